-- staging.cdr_charging_periods: one row per CDR charging period x dimension.
-- Built from staging.cdrs before its contract runs; a CDR whose periods fail is rejected whole.
with periods as (
    select
        c.cdr_id,
        c.country_code,
        c.party_id,
        c.source_file,
        c.record_no,
        unnest(from_json(c.cdr_json -> 'charging_periods', '["JSON"]')) as period,
        generate_subscripts(from_json(c.cdr_json -> 'charging_periods', '["JSON"]'), 1) as period_no
    from staging.cdrs as c
),

dims as (
    select
        periods.*,
        period ->> 'start_date_time' as start_raw,
        period ->> 'tariff_id' as tariff_id,
        unnest(coalesce(from_json(period -> 'dimensions', '["JSON"]'), [null::json])) as dim
    from periods
)

select
    cdr_id,
    country_code,
    party_id,
    country_code || ':' || party_id as party_key,
    period_no::integer as period_no,
    try_cast(start_raw as timestamptz) as start_at,
    tariff_id,
    dim ->> 'type' as dimension,
    try_cast(dim ->> 'volume' as double) as volume,
    source_file,
    record_no,
    list_filter([
        case when start_raw is not null and try_cast(start_raw as timestamptz) is null
            then 'charging_periods.start_date_time: not an ISO 8601 timestamp' end,
        case when (dim ->> 'volume') is not null and try_cast(dim ->> 'volume' as double) is null
            then 'charging_periods.dimensions.volume: not a number' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from dims
