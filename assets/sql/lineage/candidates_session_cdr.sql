-- lineage.candidates_session_cdr: (session after OCPP<->backend linking) x CDR pairs.
-- Exact: the backend row names the CDR id or the OCPI session id. Fuzzy: the CDR's EVSE
-- (via the registry) and start within $window_s of the backend or OCPP start.
-- Credit CDRs never compete for a session: they pair with their original in links.sql.
with s as (
    select
        *,
        cast(floor(epoch(match_at) / $window_s) as bigint) as bucket,
    from lineage.stage_sessions
),

c as (
    select
        *,
        cast(floor(epoch(match_at) / $window_s) as bigint) as bucket,
    from lineage.match_cdrs
    where not is_credit
),

exact as (
    select
        s.session_ref as left_id,
        c.cdr_ref as right_id,
        'exact_cdr_id' as exact_rule,
    from s
    inner join c on c.cdr_id = s.backend_cdr_id
    union all
    select
        s.session_ref as left_id,
        c.cdr_ref as right_id,
        'exact_ocpi_session_id' as exact_rule,
    from s
    inner join c on c.ocpi_session_id = s.backend_ocpi_session_id
),

s_spread as (
    select
        session_ref,
        charge_point_id,
        connector_id,
        unnest([bucket - 1, bucket, bucket + 1]) as bucket,
    from s
    where bucket is not null
),

fuzzy as (
    select
        ss.session_ref as left_id,
        c.cdr_ref as right_id,
        cast(null as varchar) as exact_rule,
    from s_spread as ss
    inner join c
        on c.charge_point_id = ss.charge_point_id
        and c.connector_id = ss.connector_id
        and c.bucket = ss.bucket
),

pairs as (
    select
        left_id,
        right_id,
        -- exact_cdr_id sorts before exact_ocpi_session_id: the CDR id is the stronger claim.
        min(exact_rule) as exact_rule,
    from (select * from exact union all select * from fuzzy) as u
    group by left_id, right_id
),

features as (
    select
        p.left_id,
        p.right_id,
        p.exact_rule,
        -- The CDR may copy the backend's times or the charger's: the closer of the two counts.
        least(
            abs(epoch(c.start_at) - epoch(s.backend_started_at)),
            abs(epoch(c.start_at) - epoch(s.ocpp_started_csms_at))
        ) as start_diff_s,
        least(
            abs(epoch(c.end_at) - epoch(s.backend_stopped_at)),
            abs(epoch(c.end_at) - epoch(s.ocpp_stopped_csms_at))
        ) as stop_diff_s,
        case
            when s.backend_energy_kwh is null then s.ocpp_energy_kwh
            when s.ocpp_energy_kwh is null then s.backend_energy_kwh
            when abs(s.backend_energy_kwh - c.total_energy_kwh) <= abs(s.ocpp_energy_kwh - c.total_energy_kwh)
                then s.backend_energy_kwh
            else s.ocpp_energy_kwh
        end as energy_left_kwh,
        c.total_energy_kwh as energy_right_kwh,
        case
            when c.token_uid_hash is null or coalesce(s.backend_token_hash, s.ocpp_token_hash) is null then null
            else coalesce(c.token_uid_hash in (s.backend_token_hash, s.ocpp_token_hash), false)
        end as token_match,
        case when c.is_live then 0 else 1 end as prefer,
    from pairs as p
    inner join s on s.session_ref = p.left_id
    inner join c on c.cdr_ref = p.right_id
)

select *
from features
where exact_rule is not null or start_diff_s <= $window_s
