-- Chargers that keep drivers waiting at the card reader: their share of late Authorize calls
-- (answered after $tolerance_ms, CSMS clock, or never answered) is far above what comparable
-- chargers of the same network draw in the same data. A healthy backend still answers a few
-- calls late (roaming remote token checks, mobile links dropping a frame), so a charger is judged
-- against that base rate, not against zero: a one-sided binomial test, P(X >= late | calls,
-- base) < $alpha, over at least $min_calls calls, and at least $min_late_share of its calls late
-- (a significant but small excess on a busy charger is the tail, not a waiting driver).
-- The base rate is the late share of the chargers of the same site type whose calls are mostly on
-- time (so the slow chargers do not raise the bar they are judged by), without the charger's own
-- calls, the network's when the site type has fewer than $base_min_calls such calls, and never below
-- $base_rate_floor.
-- Unanswered calls count as late: the driver waited in vain and retried. A few are noise the base
-- rate absorbs; a charger where most calls go unanswered is found like a slow one, and evidence
-- counts them apart.
-- Evidence names the sessions whose start followed a late Authorize of the same idTag within
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
        a.charge_point_id,
        any_value(cp.site_type) as site_type,
        count(*) as n_authorize,
        count(a.latency_ms) as n_answered,
        count(*) filter (where a.answered_at is null) as n_unanswered,
        count(*) filter (where a.is_slow) as n_slow,
        count(*) filter (where a.latency_ms > $tolerance_ms) as n_slow_answered,
        quantile_cont(a.latency_ms, 0.5) as p50_ms,
        quantile_cont(a.latency_ms, 0.75) as p75_ms,
        quantile_cont(a.latency_ms, 0.95) as p95_ms,
        max(a.latency_ms) as max_ms,
        min(a.requested_at) as first_at,
        max(a.requested_at) as last_at
    from a
    left join cp on cp.charge_point_id = a.charge_point_id
    group by a.charge_point_id
),

-- chargers whose calls are mostly on time carry the base rate
typical as (
    select * from per where n_slow * 2 <= n_authorize
),

base_type as (
    select site_type, sum(n_slow) as n_slow, sum(n_authorize) as n_calls
    from typical group by site_type
),

base_net as (
    select sum(n_slow) as n_slow, sum(n_authorize) as n_calls from typical
),

-- the charger's own calls are left out of the base it is judged against
others as (
    select
        p.*,
        coalesce(bt.n_slow, 0) - case when p.n_slow * 2 <= p.n_authorize then p.n_slow else 0 end as type_slow,
        coalesce(bt.n_calls, 0) - case when p.n_slow * 2 <= p.n_authorize then p.n_authorize else 0 end as type_calls,
        coalesce(bn.n_slow, 0) - case when p.n_slow * 2 <= p.n_authorize then p.n_slow else 0 end as net_slow,
        coalesce(bn.n_calls, 0) - case when p.n_slow * 2 <= p.n_authorize then p.n_authorize else 0 end as net_calls
    from per as p
    left join base_type as bt on bt.site_type is not distinct from p.site_type
    cross join base_net as bn
    where p.n_authorize >= $min_calls and p.n_slow >= $min_late_share * p.n_authorize
),

judged as (
    select
        o.* exclude (type_slow, type_calls, net_slow, net_calls),
        case when o.type_calls >= $base_min_calls then 'site_type' else 'network' end as base_scope,
        greatest(
            case when o.type_calls >= $base_min_calls then o.type_slow / o.type_calls
                 else coalesce(o.net_slow / nullif(o.net_calls, 0), 0) end,
            $base_rate_floor) as base_rate,
        case when o.type_calls >= $base_min_calls then o.type_calls else o.net_calls end as base_calls
    from others as o
),

-- one-sided binomial tail P(X >= n_slow | n_authorize, base_rate), summed in log space
tail as (
    select
        j.charge_point_id,
        sum(exp(lgamma(j.n_authorize + 1) - lgamma(k + 1) - lgamma(j.n_authorize - k + 1)
                + k * ln(j.base_rate) + (j.n_authorize - k) * ln(1 - j.base_rate))) as p_value
    from judged as j, unnest(range(j.n_slow, j.n_authorize + 1)) as r(k)
    group by j.charge_point_id
),

flagged as (
    select j.*, t.p_value
    from judged as j
    join tail as t on t.charge_point_id = j.charge_point_id
    where t.p_value < $alpha
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
        'slow_answered', f.n_slow_answered,
        'slow_calls', f.n_slow,
        'slow_share', round(f.n_slow / f.n_authorize, 3),
        'base_rate', round(f.base_rate, 4),
        'base_scope', f.base_scope,
        'base_calls', f.base_calls,
        'p_value', f.p_value,
        'p50_ms', round(f.p50_ms),
        'p75_ms', round(f.p75_ms),
        'p95_ms', round(f.p95_ms),
        'max_ms', f.max_ms,
        'first_authorize_at', f.first_at,
        'last_authorize_at', f.last_at,
        'tolerance_ms', $tolerance_ms,
        'min_calls', $min_calls,
        'min_late_share', $min_late_share,
        'alpha', $alpha,
        'sessions_whose_start_waited', coalesce(ss.n_sessions_waited, 0),
        'sessions_waited_sample', ss.sessions,
        'sources', 'ocpp: Authorize CALL received_at -> CALLRESULT sent_at on the CSMS clock (staging.ocpp_authorizations)'
    ) as evidence,
    format(
        'Charger {} kept drivers waiting at the card reader: {} of {} Authorize requests took longer than {} s or were never answered ({} unanswered, median answer {} s), against {} % on comparable chargers of the network.',
        f.charge_point_id,
        f.n_slow,
        f.n_authorize,
        round($tolerance_ms / 1000.0, 1),
        f.n_unanswered,
        coalesce(cast(round(f.p50_ms / 1000.0, 1) as varchar), '-'),
        round(100 * f.base_rate, 1)
    ) as explanation
from flagged as f
left join cp on cp.charge_point_id = f.charge_point_id
left join slow_starts as ss on ss.charge_point_id = f.charge_point_id
