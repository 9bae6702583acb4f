-- One row per row of recon.flags, with the finding's stable identity (flag_id) and the
-- review item it belongs to (review_key). Grain: finding.
--
-- flag_id = first 16 hex digits of sha256 over
--   check | entity | interval_start (UTC, ISO 8601, '' when null)
-- where entity is 's:' || session_key for session findings, and
-- 'e:' || charge_point_id / evse_uid / site_id for charger, EVSE and site findings.
-- It uses only business identity, never file names, row order or run time, so the same
-- finding keeps its id across reruns and re-ingestion.
-- review_key = session_key for session findings (one review item per session), else
-- 'flag:' || flag_id (one review item per charger/site finding).
with flags as (
    select
        f.session_key,
        f."check",
        f.severity,
        f.site_id,
        f.site_type,
        f.charge_point_id,
        f.evse_uid,
        f.ocpp_transaction_id,
        f.backend_session_id,
        f.cdr_id,
        cast(f.interval_start as timestamptz) as interval_start,
        cast(f.money_at_risk as double) as money_at_risk,
        f.currency,
        cast(f.evidence as json) as evidence,
        f.explanation,
    from recon.flags as f
),

identified as (
    select
        substr(sha256(concat_ws(
            '|',
            flags."check",
            case
                when flags.session_key is not null then 's:' || flags.session_key
                else 'e:' || concat_ws(
                    '/',
                    coalesce(flags.charge_point_id, ''),
                    coalesce(flags.evse_uid, ''),
                    coalesce(flags.site_id, '')
                )
            end,
            coalesce(strftime(flags.interval_start at time zone 'UTC', '%Y-%m-%dT%H:%M:%SZ'), '')
        )), 1, 16) as flag_id,
        flags.*,
    from flags
)

select
    identified.flag_id,
    coalesce(identified.session_key, 'flag:' || identified.flag_id) as review_key,
    identified.* exclude (flag_id),
    case identified.severity when 'error' then 3 when 'warn' then 2 when 'info' then 1 else 0 end
        as severity_rank,
from identified
