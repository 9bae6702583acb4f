-- marts.auth_latency: Authorize round-trip percentiles per charger and per site.
-- level = 'charger' rows have charge_point_id; level = 'site' rows aggregate the site's chargers.
-- Params: $tolerance_ms (slow threshold, [checks.auth_latency]).
with a as (
    select
        au.charge_point_id,
        cp.site_id,
        au.requested_at,
        au.answered_at,
        au.latency_ms,
        au.status
    from staging.ocpp_authorizations as au
    left join (
        select charge_point_id, min(site_id) as site_id from staging.evses group by charge_point_id
    ) as cp on cp.charge_point_id = au.charge_point_id
)

select
    case when grouping(a.charge_point_id) = 1 then 'site' else 'charger' end as level,
    a.site_id,
    any_value(si.site_type) as site_type,
    a.charge_point_id,
    count(*) as n_authorize,
    count(a.latency_ms) as n_answered,
    count(*) filter (where a.answered_at is null) as n_unanswered,
    count(*) filter (where a.status is distinct from 'Accepted') as n_not_accepted,
    count(*) filter (where a.latency_ms > $tolerance_ms or a.answered_at is null) as n_slow,
    quantile_cont(a.latency_ms, 0.5) as p50_ms,
    quantile_cont(a.latency_ms, 0.95) as p95_ms,
    quantile_cont(a.latency_ms, 0.99) as p99_ms,
    max(a.latency_ms) as max_ms,
    $tolerance_ms as tolerance_ms,
    min(a.requested_at) as first_requested_at,
    max(a.requested_at) as last_requested_at
from a
left join staging.sites as si on si.site_id = a.site_id
group by grouping sets ((a.site_id, a.charge_point_id), (a.site_id))
