-- Chargers whose Authorize round trips (CALL received -> CALLRESULT sent, CSMS clock) are slow:
-- p95 above $tolerance_ms over at least $min_samples calls, or at least $min_slow_calls calls
-- slower than $tolerance_ms (an unanswered Authorize counts as slow: the driver waited in vain).
-- Evidence names the sessions whose start followed a slow Authorize of the same idTag within
-- $start_window_s on that charger (the driver stood waiting for it).
with a as (
    select charge_point_id, id_tag_hash, requested_at, answered_at, latency_ms, status,
        latency_ms > $tolerance_ms or answered_at is null as is_slow
    from staging.ocpp_authorizations
),

cp as (
    select e.charge_point_id, min(e.site_id) as site_id, min(si.site_type) as site_type
    from staging.evses as e
    left join staging.sites as si on si.site_id = e.site_id
    group by e.charge_point_id
),

per as (
    select
        charge_point_id,
        count(*) as n_authorize,
        count(latency_ms) as n_answered,
        count(*) filter (where answered_at is null) as n_unanswered,
        count(*) filter (where is_slow) as n_slow,
        quantile_cont(latency_ms, 0.5) as p50_ms,
        quantile_cont(latency_ms, 0.95) as p95_ms,
        quantile_cont(latency_ms, 0.99) as p99_ms,
        max(latency_ms) as max_ms,
        min(requested_at) as first_at,
        max(requested_at) as last_at
    from a
    group by charge_point_id
),

flagged as (
    select *
    from per
    where (n_answered >= $min_samples and p95_ms > $tolerance_ms) or n_slow >= $min_slow_calls
),

waits as (
    -- the Authorize each start followed (latest of the same idTag within the window)
    select
        t.charge_point_id,
        t.transaction_id,
        t.start_received_at,
        arg_max(a.latency_ms, a.requested_at) as latency_ms,
        arg_max(a.is_slow, a.requested_at) as is_slow
    from lineage.transactions as t
    join flagged as f on f.charge_point_id = t.charge_point_id
    join a
        on a.charge_point_id = t.charge_point_id and a.id_tag_hash = t.id_tag_hash
        and a.requested_at <= t.start_received_at
        and a.requested_at >= t.start_received_at - to_seconds($start_window_s)
    group by all
),

slow_starts as (
    select
        w.charge_point_id,
        count(*) as n_sessions_waited,
        list(json_object('session_key', ls.session_key, 'ocpp_transaction_id', w.transaction_id,
                         'authorize_latency_ms', w.latency_ms) order by w.start_received_at)[1:20] as sessions
    from waits as w
    left join lineage.sessions as ls
        on ls.charge_point_id = w.charge_point_id and ls.ocpp_transaction_id = w.transaction_id
    where w.is_slow
    group by w.charge_point_id
)

select
    null::varchar as session_key,
    cp.site_id,
    cp.site_type,
    f.charge_point_id,
    null::varchar as evse_uid,
    null::varchar as ocpp_transaction_id,
    null::varchar as backend_session_id,
    null::varchar as cdr_id,
    null::timestamptz as interval_start,
    0 as money_at_risk,
    null::varchar as currency,
    json_object(
        'authorize_calls', f.n_authorize,
        'answered', f.n_answered,
        'unanswered', f.n_unanswered,
        'slow_calls', f.n_slow,
        'p50_ms', round(f.p50_ms),
        'p95_ms', round(f.p95_ms),
        'p99_ms', round(f.p99_ms),
        'max_ms', f.max_ms,
        'first_authorize_at', f.first_at,
        'last_authorize_at', f.last_at,
        'tolerance_ms', $tolerance_ms,
        'min_samples', $min_samples,
        'min_slow_calls', $min_slow_calls,
        'sessions_whose_start_waited', coalesce(ss.n_sessions_waited, 0),
        'sessions_waited_sample', ss.sessions,
        'sources', 'ocpp: Authorize CALL received_at -> CALLRESULT sent_at on the CSMS clock (staging.ocpp_authorizations)'
    ) as evidence,
    format(
        'Charger {} waited {} s (95th percentile) for the backend to accept a card, over {} requests ({} slower than {} s), so drivers stood waiting before charging could start.',
        f.charge_point_id,
        round(coalesce(f.p95_ms, f.max_ms) / 1000.0, 1),
        f.n_authorize,
        f.n_slow,
        round($tolerance_ms / 1000.0, 1)
    ) as explanation
from flagged as f
left join cp on cp.charge_point_id = f.charge_point_id
left join slow_starts as ss on ss.charge_point_id = f.charge_point_id
