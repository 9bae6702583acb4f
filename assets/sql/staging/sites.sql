-- staging.sites: one row per registry site. Grain: site_id (later duplicates rejected).
with src as (
    select
        source_file,
        record_no,
        nullif(trim(site_id), '') as site_id,
        lower(nullif(trim(site_type), '')) as site_type,
        nullif(trim(time_zone), '') as time_zone,
        nullif(trim(name), '') as name,
        upper(nullif(trim(country), '')) as country
    from raw.registry_sites
),

ranked as (
    select
        src.*,
        row_number() over (partition by site_id order by source_file, record_no) as dup_rank,
        first(source_file || ':' || record_no) over (
            partition by site_id order by source_file, record_no
        ) as first_seen
    from src
)

select
    site_id,
    site_type,
    time_zone,
    name,
    country,
    source_file,
    record_no,
    list_filter([
        case when time_zone is not null and time_zone not in (select tz.name from pg_timezone_names() as tz)
            then 'time_zone: not an IANA time zone' end,
        case when site_id is not null and dup_rank > 1
            then 'duplicate site_id (first at ' || first_seen || ')' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from ranked
