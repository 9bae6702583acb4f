-- staging.tariff_versions: one row per OCPI tariff version, i.e. distinct
-- (country_code, party_id, tariff_id, last_updated). In force from start_date_time (else
-- last_updated) until the next version of the same tariff comes into force or end_date_time.
with src as (
    select
        source_file,
        record_no,
        obj as o,
        nullif(trim(obj ->> 'country_code'), '') as country_code,
        nullif(trim(obj ->> 'party_id'), '') as party_id,
        nullif(trim(obj ->> 'id'), '') as tariff_id,
        obj ->> 'last_updated' as last_updated_raw,
        obj ->> 'start_date_time' as start_raw,
        obj ->> 'end_date_time' as end_raw,
        upper(obj ->> 'currency') as currency,
        obj ->> 'type' as tariff_type,
        obj -> 'min_price' as p_min,
        obj -> 'max_price' as p_max,
        obj -> 'elements' as elements,
        case
            when (obj -> 'min_price' -> 'before_taxes') is not null or (obj -> 'max_price' -> 'before_taxes') is not null
                or (obj -> 'tax_included') is not null then '2.3.0'
            when (obj ->> 'country_code') is null and (obj ->> 'party_id') is null then '2.1.1'
            else '2.2.1'
        end as ocpi_version
    from raw.tariffs
),

typed as (
    select
        src.*,
        try_cast(last_updated_raw as timestamptz) as last_updated_at,
        try_cast(start_raw as timestamptz) as start_at,
        try_cast(end_raw as timestamptz) as end_at,
        coalesce(try_cast(p_min ->> 'excl_vat' as double), try_cast(p_min ->> 'before_taxes' as double))
            as min_price_excl_vat,
        coalesce(try_cast(p_max ->> 'excl_vat' as double), try_cast(p_max ->> 'before_taxes' as double))
            as max_price_excl_vat
    from src
),

ranked as (
    select
        typed.*,
        coalesce(start_at, last_updated_at) as valid_from_at,
        row_number() over w as dup_rank,
        first(source_file || ':' || record_no) over w as kept,
        first(md5(o::varchar)) over w = md5(o::varchar) as same_as_kept
    from typed
    window w as (
        partition by country_code, party_id, tariff_id, last_updated_at
        order by source_file, record_no
    )
),

versioned as (
    select
        ranked.*,
        -- Only kept versions hand over to each other; rejects do not end a version.
        lead(valid_from_at) over (
            partition by country_code, party_id, tariff_id, (dup_rank = 1 and valid_from_at is not null)
            order by valid_from_at, last_updated_at
        ) as next_valid_from_at
    from ranked
)

select
    country_code,
    party_id,
    tariff_id,
    -- The identity of a version: macro of pipeline.tariffs.history (VERSION_ID_MACRO).
    version_id(country_code, party_id, tariff_id, last_updated_at) as version_id,
    last_updated_at,
    currency,
    tariff_type,
    start_at,
    end_at,
    valid_from_at,
    case
        when next_valid_from_at is null then end_at
        when end_at is null then next_valid_from_at
        else least(next_valid_from_at, end_at)
    end as valid_to_at,
    min_price_excl_vat,
    max_price_excl_vat,
    elements,
    o as tariff_json,
    ocpi_version,
    source_file,
    record_no,
    list_filter([
        case when json_array_length(elements) = 0 then 'elements: empty' end,
        -- GIREVE's 2.1.1 extension (pipeline.tariffs.model.SESSION_TIME): priced, but not OCPI.
        case when json_type(elements) = 'ARRAY' and list_contains(list_transform(
                json_extract_string(elements, '$[*].price_components[*].type'), lambda x: upper(trim(x))), 'SESSION_TIME')
            then 'elements: SESSION_TIME price component (GIREVE, not OCPI): priced as the whole session duration' end
    ], lambda x: x is not null)::varchar[] as dq_warnings,
    list_filter([
        case when last_updated_raw is not null and last_updated_at is null
            then 'last_updated: not an ISO 8601 timestamp' end,
        case when start_raw is not null and start_at is null then 'start_date_time: not an ISO 8601 timestamp' end,
        case when end_raw is not null and end_at is null then 'end_date_time: not an ISO 8601 timestamp' end,
        case when elements is not null and json_type(elements) <> 'ARRAY' then 'elements: not an array' end,
        case when p_min is not null and min_price_excl_vat is null then 'min_price: not a price' end,
        case when p_max is not null and max_price_excl_vat is null then 'max_price: not a price' end,
        case when tariff_id is not null and last_updated_at is not null and dup_rank > 1 and same_as_kept
            then 'duplicate tariff version: same content as ' || kept end,
        case when tariff_id is not null and last_updated_at is not null and dup_rank > 1 and not same_as_kept
            then 'duplicate tariff version: same last_updated as ' || kept || ', different content' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from versioned
