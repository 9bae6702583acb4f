-- Published EVSEs whose advertised power (latest Location snapshot, the largest connector) is
-- off: more than $tolerance_ratio from the registry's max_power_kw, or exceeded by the power the
-- charger metered (at least $min_samples_over samples above published x $observed_margin: the
-- published limit is wrong or truncated). One finding per EVSE.
-- Published kW = max_electric_power / 1000, else max_voltage x max_amperage x phases / 1000
-- (OCPI: AC voltage is line to neutral, so three-phase counts three times).
with latest as (
    select evse_uid, arg_max(location_id, snapshot_at) as location_id, arg_max(connectors, snapshot_at) as connectors,
        max(snapshot_at) as snapshot_at, count(*) as n_snapshots
    from staging.location_evse_status
    where connectors is not null  -- an EVSE PATCH of the status only leaves the connectors as they were
    group by evse_uid
),

conn as (
    select
        l.evse_uid,
        l.location_id,
        l.snapshot_at,
        l.n_snapshots,
        unnest(from_json(
            coalesce(l.connectors, '[]'),
            '[{"id": "VARCHAR", "power_type": "VARCHAR", "max_voltage": "DOUBLE", "max_amperage": "DOUBLE", "max_electric_power": "DOUBLE"}]'
        )) as c
    from latest as l
),

published as (
    select
        evse_uid,
        any_value(location_id) as location_id,
        any_value(snapshot_at) as snapshot_at,
        any_value(n_snapshots) as n_snapshots,
        max(c.max_electric_power) / 1000.0 as published_power_kw,
        max(c.max_voltage * c.max_amperage
            * case c.power_type when 'AC_3_PHASE' then 3 when 'AC_2_PHASE' then 2
                               when 'AC_2_PHASE_SPLIT' then 2 else 1 end) / 1000.0 as va_power_kw,
        max(c.max_amperage) as published_amperage_a,
        max(c.max_voltage) as published_voltage_v,
        list(distinct c.power_type) as power_types
    from conn
    group by evse_uid
),

pub as (
    select *, coalesce(published_power_kw, va_power_kw) as advertised_kw
    from published
),

reg as (
    select e.evse_uid, min(e.charge_point_id) as charge_point_id, min(e.connector_id) as connector_id,
        min(e.site_id) as site_id, max(e.max_power_kw) as registry_kw
    from staging.evses as e
    where e.evse_uid is not null
    group by e.evse_uid
),

power as (
    -- one total per sample instant: the phase-less value, else the sum of the phases
    select charge_point_id, connector_id, sampled_at,
        coalesce(max(value) filter (where phase is null),
                 sum(value) filter (where phase in ('L1', 'L2', 'L3', 'L1-N', 'L2-N', 'L3-N'))) as kw
    from staging.ocpp_meter_values
    where measurand = 'Power.Active.Import' and value is not null
    group by charge_point_id, connector_id, sampled_at
),

observed as (
    select r.evse_uid, max(p.kw) as observed_max_kw, count(*) as n_samples,
        count(*) filter (where p.kw > pub.advertised_kw * $observed_margin) as n_over
    from reg as r
    join pub on pub.evse_uid = r.evse_uid
    join power as p on p.charge_point_id = r.charge_point_id and p.connector_id = r.connector_id
    group by r.evse_uid
),

judged as (
    select
        pub.*,
        r.charge_point_id,
        r.connector_id,
        r.site_id,
        si.site_type,
        r.registry_kw,
        o.observed_max_kw,
        coalesce(o.n_samples, 0) as n_power_samples,
        coalesce(o.n_over, 0) as n_over,
        r.registry_kw > 0 and pub.advertised_kw is not null
            and abs(pub.advertised_kw - r.registry_kw) > $tolerance_ratio * r.registry_kw as registry_differs,
        coalesce(o.n_over, 0) >= $min_samples_over as observed_exceeds
    from pub
    left join reg as r on r.evse_uid = pub.evse_uid
    left join staging.sites as si on si.site_id = r.site_id
    left join observed as o on o.evse_uid = pub.evse_uid
)

select
    null::varchar as session_key,
    site_id,
    site_type,
    charge_point_id,
    evse_uid,
    null::varchar as ocpp_transaction_id,
    null::varchar as backend_session_id,
    null::varchar as cdr_id,
    null::timestamptz as interval_start,
    0 as money_at_risk,
    null::varchar as currency,
    json_object(
        'published_max_electric_power_kw', published_power_kw,
        'published_voltage_x_amperage_kw', round(va_power_kw, 3),
        'published_max_amperage_a', published_amperage_a,
        'published_max_voltage_v', published_voltage_v,
        'power_types', power_types,
        'snapshot_at', snapshot_at,
        'registry_max_power_kw', registry_kw,
        'observed_max_power_kw', round(observed_max_kw, 3),
        'power_samples', n_power_samples,
        'samples_above_published', n_over,
        'differs_from_registry', registry_differs,
        'exceeded_by_observed', observed_exceeds,
        'tolerance_ratio', $tolerance_ratio,
        'observed_margin', $observed_margin,
        'min_samples_over', $min_samples_over,
        'location_id', location_id,
        'sources', 'published: OCPI Location connectors (latest snapshot); registry: evses.csv max_power_kw; observed: OCPP Power.Active.Import meter values'
    ) as evidence,
    format(
        'EVSE {} is advertised to roaming partners at {} kW but {}, so drivers and apps see the wrong charging speed.',
        evse_uid,
        round(advertised_kw, 1),
        case
            when registry_differs and observed_exceeds then format('the registry says {} kW and it delivered up to {} kW',
                round(registry_kw, 1), round(observed_max_kw, 1))
            when registry_differs then format('the registry says {} kW', round(registry_kw, 1))
            else format('it delivered up to {} kW', round(observed_max_kw, 1))
        end
    ) as explanation
from judged
where registry_differs or observed_exceeds
