-- recon.attribution_edges (read by assets/attribution.py): per session and metered site
-- interval the least / most energy the session can have drawn in it (an EMS interval may span
-- several of the fixed session intervals), and per session what its unmetered intervals can
-- take (site_interval_at null) with the session's own energy bounds.
with
ems as (
    select site_id, interval_start_at, interval_end_at
    from recon.site_intervals
    where ems_ev_energy_kwh is not null
),

mapped as (
    select
        si.session_key, si.site_id, si.least_kwh, si.most_kwh, si.session_least_kwh, si.session_most_kwh,
        case when si.interval_start_at < j.interval_end_at then j.interval_start_at end as site_interval_at
    from recon.session_intervals as si
    asof left join ems as j
        on j.site_id = si.site_id and si.interval_start_at >= j.interval_start_at
)

select
    session_key, site_id, site_interval_at,
    sum(least_kwh) as least_kwh, sum(most_kwh) as most_kwh,
    any_value(session_least_kwh) as session_least_kwh, any_value(session_most_kwh) as session_most_kwh
from mapped
group by session_key, site_id, site_interval_at
