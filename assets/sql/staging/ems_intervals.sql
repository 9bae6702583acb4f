-- staging.ems_intervals: one row per site (or charger) metering interval.
-- interval_end = interval_end, else interval_start + interval_minutes (default 15).
-- A time without offset is local time at the site (registry), as for backend exports.
with src as (
    select
        e.source_file,
        e.record_no,
        nullif(trim(e.site_id), '') as site_id,
        nullif(trim(e.charge_point_id), '') as charge_point_id,
        nullif(trim(e.interval_start), '') as start_raw,
        nullif(trim(e.interval_end), '') as end_raw,
        nullif(trim(e.interval_minutes), '') as minutes_raw,
        nullif(trim(e.ev_energy_kwh), '') as ev_energy_raw,
        nullif(trim(e.grid_import_kwh), '') as grid_import_raw,
        nullif(trim(e.pv_kwh), '') as pv_raw,
        nullif(trim(e.battery_discharge_kwh), '') as battery_discharge_raw,
        nullif(trim(e.battery_charge_kwh), '') as battery_charge_raw,
        nullif(trim(e.ev_setpoint_kw), '') as setpoint_raw,
        s.time_zone
    from raw.ems_intervals as e
    left join staging.sites as s on s.site_id = nullif(trim(e.site_id), '')
),

typed as (
    select
        src.*,
        case
            when regexp_matches(start_raw, '\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$')
                then try_cast(start_raw as timestamptz)
            else timezone(coalesce(time_zone, 'UTC'), try_cast(start_raw as timestamp))
        end as interval_start_at,
        case
            when regexp_matches(end_raw, '\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$')
                then try_cast(end_raw as timestamptz)
            else timezone(coalesce(time_zone, 'UTC'), try_cast(end_raw as timestamp))
        end as interval_end_given,
        -- NaN, inf or 1e308 minutes would overflow the interval arithmetic below: not a number
        case when abs(try_cast(minutes_raw as double)) <= 1e6 then try_cast(minutes_raw as double) end
            as interval_minutes,
        try_cast(ev_energy_raw as double) as ev_energy_kwh,
        try_cast(grid_import_raw as double) as grid_import_kwh,
        try_cast(pv_raw as double) as pv_kwh,
        try_cast(battery_discharge_raw as double) as battery_discharge_kwh,
        try_cast(battery_charge_raw as double) as battery_charge_kwh,
        try_cast(setpoint_raw as double) as ev_setpoint_kw
    from src
),

ranked as (
    select
        typed.*,
        coalesce(
            interval_end_given,
            interval_start_at + to_microseconds(cast(coalesce(interval_minutes, 15) * 60000000 as bigint))
        ) as interval_end_at,
        row_number() over w as dup_rank,
        first(source_file || ':' || record_no) over w as first_seen
    from typed
    window w as (partition by site_id, charge_point_id, interval_start_at order by source_file, record_no)
)

select
    site_id,
    charge_point_id,
    interval_start_at,
    interval_end_at,
    ev_energy_kwh,
    grid_import_kwh,
    pv_kwh,
    battery_discharge_kwh,
    battery_charge_kwh,
    ev_setpoint_kw,
    source_file,
    record_no,
    list_filter([
        case when time_zone is null then 'site_id: not in registry' end,
        case when time_zone is null and ((start_raw is not null and interval_start_at is not null
                and not regexp_matches(start_raw, '([Zz]|[+-]\d{2}(:?\d{2})?)$')))
            then 'timestamp without offset and site time zone unknown: read as UTC' end
    ], lambda x: x is not null)::varchar[] as dq_warnings,
    list_filter([
        case when start_raw is not null and interval_start_at is null
            then 'interval_start: not an ISO 8601 timestamp' end,
        case when end_raw is not null and interval_end_given is null then 'interval_end: not an ISO 8601 timestamp' end,
        case when minutes_raw is not null and interval_minutes is null then 'interval_minutes: not a number' end,
        case when ev_energy_raw is not null and ev_energy_kwh is null then 'ev_energy_kwh: not a number' end,
        case when grid_import_raw is not null and grid_import_kwh is null then 'grid_import_kwh: not a number' end,
        case when pv_raw is not null and pv_kwh is null then 'pv_kwh: not a number' end,
        case when battery_discharge_raw is not null and battery_discharge_kwh is null
            then 'battery_discharge_kwh: not a number' end,
        case when battery_charge_raw is not null and battery_charge_kwh is null
            then 'battery_charge_kwh: not a number' end,
        case when setpoint_raw is not null and ev_setpoint_kw is null then 'ev_setpoint_kw: not a number' end,
        case when interval_start_at is not null and dup_rank > 1
            then 'duplicate interval (first at ' || first_seen || ')' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from ranked
