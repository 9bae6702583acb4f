-- recon.site_intervals: per site EMS interval, the EV energy the site meter measured
-- beside what the sessions in it can have drawn (recon.session_intervals): the band
-- [sessions_least_kwh, sessions_most_kwh] the evidence proves and the time-prorated point
-- estimate (sessions_energy_kwh). n_evses (the site's EVSEs in the registry) sizes the
-- chargers' standby draw, which the site meter sees and no session records.
--
-- Site-level EMS rows (no charge_point_id) win; a site that only reports per charger is
-- summed over its chargers. EMS intervals longer than $interval_minutes are matched by
-- exploding them into $interval_minutes sub-intervals (an equality join, not a range
-- join, so it scales with rows rather than rows x intervals).
with
ems_rows as (
    -- A re-delivered EMS row is one reading.
    select
        site_id, charge_point_id, interval_start_at,
        max(interval_end_at) as interval_end_at,
        max(ev_energy_kwh) as ev_energy_kwh,
        max(grid_import_kwh) as grid_import_kwh,
        max(pv_kwh) as pv_kwh,
        max(battery_discharge_kwh) as battery_discharge_kwh,
        max(battery_charge_kwh) as battery_charge_kwh,
        max(ev_setpoint_kw) as ev_setpoint_kw
    from staging.ems_intervals
    where interval_start_at is not null
    group by site_id, charge_point_id, interval_start_at
),

ems as (
    select
        site_id, interval_start_at,
        max(interval_end_at) as interval_end_at,
        coalesce(sum(ev_energy_kwh) filter (where charge_point_id is null),
                 sum(ev_energy_kwh)) as ems_ev_energy_kwh,
        coalesce(sum(grid_import_kwh) filter (where charge_point_id is null), sum(grid_import_kwh)) as grid_import_kwh,
        coalesce(sum(pv_kwh) filter (where charge_point_id is null), sum(pv_kwh)) as pv_kwh,
        coalesce(sum(battery_discharge_kwh) filter (where charge_point_id is null), sum(battery_discharge_kwh))
            as battery_discharge_kwh,
        coalesce(sum(battery_charge_kwh) filter (where charge_point_id is null), sum(battery_charge_kwh))
            as battery_charge_kwh,
        coalesce(sum(ev_setpoint_kw) filter (where charge_point_id is null), sum(ev_setpoint_kw)) as ev_setpoint_kw,
        count(*) as ems_rows,
        bool_or(charge_point_id is null) as has_site_row
    from ems_rows
    group by site_id, interval_start_at
),

ems_sub as (
    select
        site_id, interval_start_at,
        unnest(generate_series(
            interval_start_at,
            coalesce(interval_end_at, interval_start_at + to_minutes(cast($interval_minutes as bigint)))
                - interval 1 second,
            to_minutes(cast($interval_minutes as bigint))
        )) as sub_start_at
    from ems
),

sessions as (
    select
        x.site_id, x.interval_start_at,
        sum(si.energy_kwh) as sessions_energy_kwh,
        sum(si.least_kwh) as sessions_least_kwh,
        sum(si.most_kwh) as sessions_most_kwh,
        coalesce(sum(si.most_kwh) filter (where si.is_dc), 0) as sessions_most_dc_kwh,
        sum(si.rest_kwh) as sessions_even_kwh,
        count(distinct si.session_key) as n_sessions,
        list(distinct si.session_key order by si.session_key) as session_keys
    from ems_sub as x
    inner join recon.session_intervals as si
        on si.site_id = x.site_id and si.interval_start_at = x.sub_start_at
    group by x.site_id, x.interval_start_at
),

evse_count as (
    select site_id, count(distinct (charge_point_id, connector_id)) as n_evses
    from staging.evses
    where site_id is not null
    group by site_id
)

select
    e.site_id,
    st.site_type,
    e.interval_start_at,
    coalesce(e.interval_end_at, e.interval_start_at + to_minutes(cast($interval_minutes as bigint)))
        as interval_end_at,
    e.ems_ev_energy_kwh,
    coalesce(s.sessions_energy_kwh, 0) as sessions_energy_kwh,
    coalesce(s.sessions_even_kwh, 0) as sessions_even_kwh,
    coalesce(s.sessions_least_kwh, 0) as sessions_least_kwh,
    coalesce(s.sessions_most_kwh, 0) as sessions_most_kwh,
    coalesce(s.sessions_most_dc_kwh, 0) as sessions_most_dc_kwh,
    coalesce(n.n_evses, 0) as n_evses,
    e.ems_ev_energy_kwh - coalesce(s.sessions_energy_kwh, 0) as difference_kwh,
    coalesce(s.n_sessions, 0) as n_sessions,
    coalesce(s.session_keys, []) as session_keys,
    e.pv_kwh, e.battery_discharge_kwh, e.battery_charge_kwh, e.grid_import_kwh, e.ev_setpoint_kw,
    e.ems_rows,
    case when e.has_site_row then 'site' else 'chargers' end as ems_basis
from ems as e
left join sessions as s using (site_id, interval_start_at)
left join staging.sites as st on st.site_id = e.site_id
left join evse_count as n on n.site_id = e.site_id
