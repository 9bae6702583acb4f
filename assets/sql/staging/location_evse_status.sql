-- staging.location_evse_status: one row per EVSE per OCPI Location snapshot or EVSE PATCH.
-- snapshot_at is the EVSE's last_updated (its status changed then), else the Location's.
-- published_at is when the map could first show this row: the latest of the EVSE's and the
-- Location's last_updated (a full-Location push re-sends every EVSE at the push time) and the
-- envelope timestamp of a pulled listing (a pull shows a status only from the pull on).
-- An EVSE PATCH is logged flat, its URL ids beside the body: {country_code, party_id,
-- location_id, evse_uid, status, last_updated}; it has no connectors (null, not none).
-- A record with no EVSE to stage (a bare EVSE, an empty location) yields one
-- row with evse_uid null and a reason, so it is rejected rather than lost.
-- OCPI 2.1.1 is read too: connector `voltage`/`amperage`/`tariff_id` map onto 2.2.1's
-- `max_voltage`/`max_amperage`/`tariff_ids`; coordinates may be strings. A time without a
-- zone designator is read as UTC (OCPI DateTime is UTC) with a dq warning saying so.
with src as (
    select
        source_file,
        record_no,
        obj as o,
        nullif(trim(obj ->> 'country_code'), '') as country_code,
        nullif(trim(obj ->> 'party_id'), '') as party_id,
        coalesce(nullif(trim(obj ->> 'id'), ''), nullif(trim(obj ->> 'location_id'), '')) as location_id,
        obj ->> 'time_zone' as time_zone,
        case when not is_evse_patch then obj ->> 'last_updated' end as location_updated_raw,
        try_cast(envelope_at as timestamptz) as envelope_at,
        is_evse_patch,
        try_cast(obj -> 'coordinates' ->> 'latitude' as double) as location_latitude,
        try_cast(obj -> 'coordinates' ->> 'longitude' as double) as location_longitude,
        upper(obj ->> 'country') as country,
        -- a bare status body (OCPI puts the ids of a PATCH in its URL): nothing says which EVSE
        (obj ->> 'status') is not null and (obj -> 'evses') is null and (obj ->> 'id') is null
            and (obj ->> 'uid') is null and not is_evse_patch as is_status_patch,
        case when is_evse_patch then [obj] else coalesce(from_json(obj -> 'evses', '["JSON"]'), []) end as evses
    from (
        select *, (obj ->> 'evse_uid') is not null and (obj -> 'evses') is null as is_evse_patch
        from raw.locations
    )
),

evses as (
    select
        src.* exclude (evses),
        unnest(case when len(evses) = 0 then [null::json] else evses end) as evse,
        unnest(case when len(evses) = 0 then [0] else generate_series(1, len(evses)) end) as evse_no,
        len(evses) as n_evses
    from src
),

typed as (
    select
        evses.*,
        coalesce(nullif(trim(evse ->> 'uid'), ''), nullif(trim(evse ->> 'evse_uid'), '')) as evse_uid,
        evse ->> 'evse_id' as evse_id,
        evse ->> 'status' as status,
        evse ->> 'last_updated' as evse_updated_raw,
        try_cast(evse ->> 'last_updated' as timestamptz) as evse_updated_at,
        try_cast(location_updated_raw as timestamptz) as location_last_updated_at,
        coalesce(try_cast(evse -> 'coordinates' ->> 'latitude' as double), location_latitude) as latitude,
        coalesce(try_cast(evse -> 'coordinates' ->> 'longitude' as double), location_longitude) as longitude,
        (evse -> 'coordinates' ->> 'latitude') is not null and (evse -> 'coordinates' ->> 'latitude') <> ''
            and try_cast(evse -> 'coordinates' ->> 'latitude' as double) is null as evse_coordinates_bad,
        (
            select list({
                'id': c ->> 'id',
                'standard': c ->> 'standard',
                'format': c ->> 'format',
                'power_type': c ->> 'power_type',
                'max_voltage': try_cast(coalesce(c ->> 'max_voltage', c ->> 'voltage') as double),
                'max_amperage': try_cast(coalesce(c ->> 'max_amperage', c ->> 'amperage') as double),
                'max_electric_power': try_cast(c ->> 'max_electric_power' as double),
                'tariff_ids': coalesce(
                    from_json(c -> 'tariff_ids', '["VARCHAR"]'),
                    case when (c ->> 'tariff_id') is not null then [c ->> 'tariff_id'] end
                ),
                'last_updated': c ->> 'last_updated'
            })
            from (select unnest(coalesce(from_json(evse -> 'connectors', '["JSON"]'), [])) as c)
        ) as connector_list
    from evses
)

select
    country_code,
    party_id,
    location_id,
    evse_no::integer as evse_no,
    evse_uid,
    evse_id,
    status,
    coalesce(evse_updated_at, location_last_updated_at) as snapshot_at,
    greatest(evse_updated_at, location_last_updated_at, envelope_at) as published_at,
    case when is_evse_patch then 'evse_patch' when envelope_at is not null then 'pull' else 'location' end
        as snapshot_kind,
    location_last_updated_at,
    time_zone,
    latitude,
    longitude,
    case when not (is_evse_patch and (evse -> 'connectors') is null)
        then to_json(coalesce(connector_list, [])) end as connectors,
    source_file,
    record_no,
    list_filter([
        case when list_contains(list_transform(coalesce(connector_list, []), lambda c: c.standard is null
                or c.standard not in (
                    'CHADEMO', 'CHAOJI', 'DOMESTIC_A', 'DOMESTIC_B', 'DOMESTIC_C', 'DOMESTIC_D', 'DOMESTIC_E',
                    'DOMESTIC_F', 'DOMESTIC_G', 'DOMESTIC_H', 'DOMESTIC_I', 'DOMESTIC_J', 'DOMESTIC_K',
                    'DOMESTIC_L', 'DOMESTIC_M', 'DOMESTIC_N', 'DOMESTIC_O', 'GBT_AC', 'GBT_DC',
                    'IEC_60309_2_single_16', 'IEC_60309_2_three_16', 'IEC_60309_2_three_32',
                    'IEC_60309_2_three_64', 'IEC_62196_T1', 'IEC_62196_T1_COMBO', 'IEC_62196_T2',
                    'IEC_62196_T2_COMBO', 'IEC_62196_T3A', 'IEC_62196_T3C', 'NEMA_5_20', 'NEMA_6_30',
                    'NEMA_6_50', 'NEMA_10_30', 'NEMA_10_50', 'NEMA_14_30', 'NEMA_14_50',
                    'PANTOGRAPH_BOTTOM_UP', 'PANTOGRAPH_TOP_DOWN', 'TESLA_R', 'TESLA_S')), true)
            then 'connectors: standard not in the OCPI 2.2.1 list' end,
        case when len(coalesce(connector_list, [])) = 0 and evse is not null and not is_evse_patch
            then 'connectors: none' end,
        case when location_last_updated_at is not null and not regexp_matches(trim(location_updated_raw), '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$')
            then 'last_updated: no time zone, read as UTC' end,
        case when evse_updated_at is not null and not regexp_matches(trim(evse_updated_raw), '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$')
            then 'evses.last_updated: no time zone, read as UTC' end,
        case when latitude is null and evse is not null and not is_evse_patch then 'coordinates: missing or not a number' end,
        case when evse_coordinates_bad then 'evses.coordinates: not a number, the Location''s taken' end,
        case when abs(latitude) > 90
                or (country in ('BEL', 'NLD', 'DEU', 'FRA', 'GBR', 'AUT', 'CHE', 'DNK', 'NOR',
                    'SWE', 'FIN', 'POL', 'CZE', 'ITA', 'ESP', 'PRT', 'IRL', 'LUX')
                    and latitude between -35 and 35 and longitude between 35 and 72)
            then 'coordinates: latitude and longitude look swapped' end
    ], lambda x: x is not null)::varchar[] as dq_warnings,
    list_filter([
        case when n_evses = 0 and location_id is not null then 'location has no EVSEs' end,
        case when n_evses = 0 and location_id is null then 'not a Location object (no id, no evses)' end,
        -- OCPI sends a status PATCH to .../locations/{country}/{party}/{location}/{evse}: the
        -- body alone does not say which EVSE changed
        case when is_status_patch
            then 'EVSE status PATCH body: names no Location or EVSE (OCPI puts them in the request URL)' end,
        case when location_updated_raw is not null and location_last_updated_at is null
            then 'last_updated: not an ISO 8601 timestamp' end,
        case when evse_updated_raw is not null and evse_updated_at is null
            then 'evses.last_updated: not an ISO 8601 timestamp' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from typed
