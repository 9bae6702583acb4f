-- Sessions whose start or stop differs between two sources by more than $tolerance_s.
-- OCPP payload times are first corrected by the charger's estimated clock skew
-- (recon.charger_clock): drift a skewed clock explains is charger_clock_skew, not this.
-- An OCPP pair counts the smaller of the raw and skew-corrected differences (a backend fed
-- by the charger's own stamps follows the skewed clock). A stop recovered from the offline
-- queue is also accepted at its CSMS receive time, which is when the backend learnt of it.
-- A backend time whose local wall-clock reading occurs twice in the site's zone (the hour
-- repeated when daylight saving ends) is also accepted at its other reading: exports without
-- an offset are read in the site's zone (contract §2), and that hour is ambiguous.
with tx as (
    select
        charge_point_id, transaction_id,
        case when stop_from_offline_queue then stop_received_at end as stop_received_at
    from lineage.transactions
),

s as (
    select
        ls.session_key, ls.site_id, ls.site_type, ls.charge_point_id, ls.evse_uid,
        ls.ocpp_transaction_id, ls.backend_session_id, ls.cdr_id, ls.currency,
        case when ls.ocpp_started_at >= timestamptz '2000-01-01 00:00:00+00' then ls.ocpp_started_at end as o_start,
        case when ls.ocpp_stopped_at >= timestamptz '2000-01-01 00:00:00+00' then ls.ocpp_stopped_at end as o_stop,
        tx.stop_received_at as r_stop,
        ls.backend_started_at as b_start,
        ls.backend_stopped_at as b_stop,
        case
            when timezone(st.time_zone, ls.backend_started_at - interval 1 hour)
                = timezone(st.time_zone, ls.backend_started_at) then ls.backend_started_at - interval 1 hour
            when timezone(st.time_zone, ls.backend_started_at + interval 1 hour)
                = timezone(st.time_zone, ls.backend_started_at) then ls.backend_started_at + interval 1 hour
        end as b_start_alt,
        case
            when timezone(st.time_zone, ls.backend_stopped_at - interval 1 hour)
                = timezone(st.time_zone, ls.backend_stopped_at) then ls.backend_stopped_at - interval 1 hour
            when timezone(st.time_zone, ls.backend_stopped_at + interval 1 hour)
                = timezone(st.time_zone, ls.backend_stopped_at) then ls.backend_stopped_at + interval 1 hour
        end as b_stop_alt,
        ls.cdr_started_at as c_start,
        ls.cdr_stopped_at as c_stop,
        case when ck.is_reliable then coalesce(ck.skew_s, 0) else 0 end as skew_s
    from lineage.sessions as ls
    left join tx
        on tx.charge_point_id = ls.charge_point_id and tx.transaction_id = ls.ocpp_transaction_id
    left join recon.charger_clock as ck on ck.charge_point_id = ls.charge_point_id
    left join staging.sites as st on st.site_id = ls.site_id
),

d as (
    select
        *,
        -- seconds; null when a source lacks the time
        least(
            abs(epoch(o_start) - epoch(b_start)),
            abs(epoch(o_start) - skew_s - epoch(b_start)),
            abs(epoch(o_start) - epoch(b_start_alt)),
            abs(epoch(o_start) - skew_s - epoch(b_start_alt))
        ) as start_ocpp_backend_s,
        least(
            abs(epoch(o_start) - epoch(c_start)),
            abs(epoch(o_start) - skew_s - epoch(c_start))
        ) as start_ocpp_cdr_s,
        least(abs(epoch(b_start) - epoch(c_start)), abs(epoch(b_start_alt) - epoch(c_start))) as start_backend_cdr_s,
        least(
            abs(epoch(o_stop) - epoch(b_stop)),
            abs(epoch(o_stop) - skew_s - epoch(b_stop)),
            abs(epoch(r_stop) - epoch(b_stop)),
            abs(epoch(o_stop) - epoch(b_stop_alt)),
            abs(epoch(o_stop) - skew_s - epoch(b_stop_alt)),
            abs(epoch(r_stop) - epoch(b_stop_alt))
        ) as stop_ocpp_backend_s,
        least(
            abs(epoch(o_stop) - epoch(c_stop)),
            abs(epoch(o_stop) - skew_s - epoch(c_stop)),
            abs(epoch(r_stop) - epoch(c_stop))
        ) as stop_ocpp_cdr_s,
        least(abs(epoch(b_stop) - epoch(c_stop)), abs(epoch(b_stop_alt) - epoch(c_stop))) as stop_backend_cdr_s
    from s
),

worst as (
    select
        *,
        greatest(
            coalesce(start_ocpp_backend_s, 0), coalesce(start_ocpp_cdr_s, 0), coalesce(start_backend_cdr_s, 0),
            coalesce(stop_ocpp_backend_s, 0), coalesce(stop_ocpp_cdr_s, 0), coalesce(stop_backend_cdr_s, 0)
        ) as max_drift_s,
        greatest(
            coalesce(start_ocpp_backend_s, 0), coalesce(start_ocpp_cdr_s, 0), coalesce(start_backend_cdr_s, 0)
        ) > $tolerance_s as start_drifts,
        greatest(
            coalesce(stop_ocpp_backend_s, 0), coalesce(stop_ocpp_cdr_s, 0), coalesce(stop_backend_cdr_s, 0)
        ) > $tolerance_s as stop_drifts
    from d
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id, backend_session_id, cdr_id,
    null::timestamptz as interval_start,
    0 as money_at_risk,
    currency,
    json_object(
        'ocpp_started_at', o_start, 'ocpp_stopped_at', o_stop,
        'ocpp_offline_stop_received_at', r_stop,
        'backend_started_at', b_start, 'backend_stopped_at', b_stop,
        'backend_started_at_other_reading', b_start_alt, 'backend_stopped_at_other_reading', b_stop_alt,
        'cdr_started_at', c_start, 'cdr_stopped_at', c_stop,
        'charger_skew_applied_s', skew_s,
        'differences_s', json_object(
            'start_ocpp_backend', round(start_ocpp_backend_s, 3), 'start_ocpp_cdr', round(start_ocpp_cdr_s, 3),
            'start_backend_cdr', round(start_backend_cdr_s, 3), 'stop_ocpp_backend', round(stop_ocpp_backend_s, 3),
            'stop_ocpp_cdr', round(stop_ocpp_cdr_s, 3), 'stop_backend_cdr', round(stop_backend_cdr_s, 3)
        ),
        'tolerance_s', $tolerance_s,
        'sources', 'ocpp: charger payload time (corrected by skew); backend: CSMS export; cdr: OCPI CDR'
    ) as evidence,
    format(
        'The {} time of this session differs by {} s between the charger, backend and CDR records (more than the {} s allowed), so billed duration may be wrong.',
        case when start_drifts and stop_drifts then 'start and stop' when start_drifts then 'start' else 'stop' end,
        round(max_drift_s)::bigint, $tolerance_s
    ) as explanation
from worst
where start_drifts or stop_drifts
