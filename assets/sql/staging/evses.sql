-- staging.evses: OCPP charger connector <-> OCPI location EVSE. Grain: (charge_point_id, connector_id).
with src as (
    select
        source_file,
        record_no,
        nullif(trim(charge_point_id), '') as charge_point_id,
        nullif(trim(connector_id), '') as connector_id_raw,
        try_cast(nullif(trim(connector_id), '') as integer) as connector_id,
        nullif(trim(site_id), '') as site_id,
        nullif(trim(location_id), '') as location_id,
        nullif(trim(evse_uid), '') as evse_uid,
        nullif(trim(evse_id), '') as evse_id,
        nullif(trim(max_power_kw), '') as max_power_kw_raw,
        try_cast(nullif(trim(max_power_kw), '') as double) as max_power_kw
    from raw.registry_evses
),

ranked as (
    select
        src.*,
        row_number() over (
            partition by charge_point_id, connector_id order by source_file, record_no
        ) as dup_rank,
        first(source_file || ':' || record_no) over (
            partition by charge_point_id, connector_id order by source_file, record_no
        ) as first_seen
    from src
)

select
    r.charge_point_id,
    r.connector_id,
    r.site_id,
    r.location_id,
    r.evse_uid,
    r.evse_id,
    r.max_power_kw,
    r.source_file,
    r.record_no,
    list_filter([
        case when r.site_id is not null and s.site_id is null then 'site_id: not in registry sites' end
    ], lambda x: x is not null)::varchar[] as dq_warnings,
    list_filter([
        case when r.connector_id_raw is not null and r.connector_id is null
            then 'connector_id: not an integer' end,
        case when r.max_power_kw_raw is not null and r.max_power_kw is null
            then 'max_power_kw: not a number' end,
        case when r.charge_point_id is not null and r.connector_id is not null and r.dup_rank > 1
            then 'duplicate (charge_point_id, connector_id) (first at ' || r.first_seen || ')' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from ranked as r
left join staging.sites as s on s.site_id = r.site_id
