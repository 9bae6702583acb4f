-- staging.backend_sessions: one row per CSMS billing-backend session (latest export wins).
-- A timestamp without offset is local time at the charger's site (registry); `+0000` is fine.
-- "Latest" is the row's own `exported_at` when the export carries one, else the time its
-- file was last written (meta.files.modified_at), then the later ingest: never the file
-- name, which partners do not all write date-sortable.
with src as (
    select
        b.source_file,
        b.record_no,
        nullif(trim(b.session_id), '') as session_id,
        nullif(trim(b.charge_point_id), '') as charge_point_id,
        nullif(trim(b.connector_id), '') as connector_id_raw,
        nullif(trim(b.transaction_id), '') as transaction_id,
        nullif(trim(b.id_tag), '') as id_tag,
        nullif(trim(b.started_at), '') as started_raw,
        nullif(trim(b.stopped_at), '') as stopped_raw,
        nullif(trim(b.energy_kwh), '') as energy_kwh_raw,
        nullif(trim(b.energy_wh), '') as energy_wh_raw,
        nullif(trim(b.ocpi_session_id), '') as ocpi_session_id,
        nullif(trim(b.cdr_id), '') as cdr_id,
        upper(nullif(trim(b.status), '')) as status,
        nullif(trim(b.amount), '') as amount_raw,
        upper(nullif(trim(b.currency), '')) as currency,
        nullif(trim(b.meter_start_wh), '') as meter_start_raw,
        nullif(trim(b.meter_stop_wh), '') as meter_stop_raw,
        nullif(trim(b.exported_at), '') as exported_raw,
        f.modified_at as file_modified_at,
        f.ingested_at as file_ingested_at
    from raw.backend_sessions as b
    left join meta.files as f on f.source_file = b.source_file
),

cp_site as (
    select
        charge_point_id,
        min(site_id) as site_id
    from staging.evses
    group by charge_point_id
),

located as (
    select
        src.*,
        try_cast(src.connector_id_raw as integer) as connector_id,
        coalesce(e.site_id, c.site_id) as site_id,
        s.time_zone,
        regexp_matches(
            src.started_raw, '\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$'
        ) as started_has_offset,
        regexp_matches(
            src.stopped_raw, '\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$'
        ) as stopped_has_offset,
        regexp_matches(
            src.exported_raw, '\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$'
        ) as exported_has_offset
    from src
    left join staging.evses as e
        on e.charge_point_id = src.charge_point_id
        and e.connector_id = try_cast(src.connector_id_raw as integer)
    left join cp_site as c on c.charge_point_id = src.charge_point_id
    left join staging.sites as s on s.site_id = coalesce(e.site_id, c.site_id)
),

typed as (
    select
        located.*,
        case
            when started_has_offset then try_cast(started_raw as timestamptz)
            else timezone(coalesce(time_zone, 'UTC'), try_cast(started_raw as timestamp))
        end as started_at,
        case
            when stopped_has_offset then try_cast(stopped_raw as timestamptz)
            else timezone(coalesce(time_zone, 'UTC'), try_cast(stopped_raw as timestamp))
        end as stopped_at,
        case
            when exported_has_offset then try_cast(exported_raw as timestamptz)
            else timezone(coalesce(time_zone, 'UTC'), try_cast(exported_raw as timestamp))
        end as exported_at,
        try_cast(energy_kwh_raw as double) as energy_kwh_given,
        try_cast(energy_wh_raw as double) / 1000.0 as energy_kwh_from_wh,
        try_cast(meter_start_raw as double) as meter_start_wh,
        try_cast(meter_stop_raw as double) as meter_stop_wh,
        try_cast(amount_raw as double) as amount
    from located
),

ranked as (
    select
        typed.*,
        row_number() over (
            partition by session_id
            order by (stopped_at is not null) desc, coalesce(exported_at, file_modified_at) desc nulls last,
                file_ingested_at desc, source_file desc, record_no desc
        ) as dup_rank,
        first(source_file || ':' || record_no) over (
            partition by session_id
            order by (stopped_at is not null) desc, coalesce(exported_at, file_modified_at) desc nulls last,
                file_ingested_at desc, source_file desc, record_no desc
        ) as kept
    from typed
)

select
    session_id,
    charge_point_id,
    connector_id,
    transaction_id,
    token_hash(id_tag, $token_ipad, $token_opad) as id_tag_hash,
    started_at,
    stopped_at,
    -- an export with only the meter registers (SteVe): energy is their difference
    coalesce(energy_kwh_given, energy_kwh_from_wh, (meter_stop_wh - meter_start_wh) / 1000.0) as energy_kwh,
    ocpi_session_id,
    cdr_id,
    status,
    amount,
    currency,
    site_id,
    source_file,
    record_no,
    list_filter([
        case when site_id is null then 'charge_point_id: not in registry' end,
        case when time_zone is null and ((started_raw is not null and not started_has_offset)
                or (stopped_raw is not null and not stopped_has_offset))
            then 'timestamp without offset and site time zone unknown: read as UTC' end,
        case when energy_kwh_given is not null and energy_kwh_from_wh is not null
                and abs(energy_kwh_given - energy_kwh_from_wh) > 0.001
            then 'energy_kwh and energy_wh disagree: energy_kwh kept' end
    ], lambda x: x is not null)::varchar[] as dq_warnings,
    list_filter([
        case when connector_id_raw is not null and connector_id is null
            then 'connector_id: not an integer' end,
        case when started_raw is not null and started_at is null
            then 'started_at: not an ISO 8601 timestamp' end,
        case when stopped_raw is not null and stopped_at is null
            then 'stopped_at: not an ISO 8601 timestamp' end,
        case when energy_kwh_raw is not null and energy_kwh_given is null
            then 'energy_kwh: not a number' end,
        case when energy_wh_raw is not null and energy_kwh_from_wh is null
            then 'energy_wh: not a number' end,
        case when amount_raw is not null and amount is null then 'amount: not a number' end,
        case when meter_start_raw is not null and meter_start_wh is null then 'meter_start_wh: not a number' end,
        case when meter_stop_raw is not null and meter_stop_wh is null then 'meter_stop_wh: not a number' end,
        case when exported_raw is not null and exported_at is null
            then 'exported_at: not an ISO 8601 timestamp' end,
        case when session_id is not null and dup_rank > 1
            then 'duplicate session_id: superseded by ' || kept end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from ranked
