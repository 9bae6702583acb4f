-- marts.session_energy_sources: where each session's energy came from at microgrid sites.
--
-- Allocation rule (docs/warehouse.md): within one EMS interval the EV load is served
-- first by PV, then by battery discharge, then by grid import (the merit order a
-- microgrid controller dispatches: free local energy first, stored energy next, bought
-- energy last). Whatever PV and battery do not cover is grid. The EV load is the EMS's
-- own ev_energy_kwh, or the sessions' sum where the EMS reports none. Each session takes
-- the interval's PV / battery / grid fractions in proportion to its prorated energy.
with
iv as (
    select
        site_id, interval_start_at, interval_end_at, pv_kwh, battery_discharge_kwh,
        coalesce(nullif(ems_ev_energy_kwh, 0), sessions_energy_kwh) as ev_kwh
    from recon.site_intervals
    where site_type = 'microgrid'
),

served as (
    select
        *,
        least(ev_kwh, greatest(coalesce(pv_kwh, 0), 0)) as pv_to_ev_kwh
    from iv
    where ev_kwh > 0
),

fractions as (
    select
        site_id,
        unnest(generate_series(
            interval_start_at, interval_end_at - interval 1 second,
            to_minutes(cast($interval_minutes as bigint))
        )) as sub_start_at,
        pv_to_ev_kwh / ev_kwh as f_pv,
        least(ev_kwh - pv_to_ev_kwh, greatest(coalesce(battery_discharge_kwh, 0), 0)) / ev_kwh as f_battery
    from served
),

per_session as (
    select
        si.session_key, si.site_id, si.charge_point_id, si.evse_uid, si.ocpp_transaction_id,
        si.interval_start_at, si.energy_kwh,
        f.f_pv, f.f_battery, f.site_id is not null as covered
    from recon.session_intervals as si
    left join fractions as f
        on f.site_id = si.site_id and f.sub_start_at = si.interval_start_at
    where si.site_type = 'microgrid'
)

select
    session_key,
    any_value(site_id) as site_id,
    any_value(charge_point_id) as charge_point_id,
    any_value(evse_uid) as evse_uid,
    any_value(ocpp_transaction_id) as ocpp_transaction_id,
    min(interval_start_at) as first_interval_at,
    sum(energy_kwh) as energy_kwh,
    sum(energy_kwh * f_pv) filter (where covered) as pv_kwh,
    sum(energy_kwh * f_battery) filter (where covered) as battery_kwh,
    sum(energy_kwh * (1 - f_pv - f_battery)) filter (where covered) as grid_kwh,
    coalesce(sum(energy_kwh) filter (where not covered), 0) as uncovered_kwh,
    sum(energy_kwh * f_pv) filter (where covered) / nullif(sum(energy_kwh) filter (where covered), 0) as pv_share,
    sum(energy_kwh * f_battery) filter (where covered) / nullif(sum(energy_kwh) filter (where covered), 0)
        as battery_share,
    sum(energy_kwh * (1 - f_pv - f_battery)) filter (where covered) / nullif(sum(energy_kwh) filter (where covered), 0)
        as grid_share,
    count(*) as n_intervals,
    'pv_battery_grid' as allocation_rule
from per_session
group by session_key
