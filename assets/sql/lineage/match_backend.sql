-- lineage.match_backend: one row per backend session id, shaped for matching.
-- A session exported twice (a re-export in another file) keeps its most complete row.
select
    b.session_id,
    b.charge_point_id,
    try_cast(b.connector_id as integer) as connector_id,
    nullif(cast(b.transaction_id as varchar), '') as transaction_id,
    b.id_tag_hash as token_hash,
    b.started_at,
    b.stopped_at,
    b.energy_kwh,
    nullif(b.ocpi_session_id, '') as ocpi_session_id,
    nullif(b.cdr_id, '') as cdr_id,
    b.status,
    b.amount,
    b.currency,
    b.started_at as match_at,
from staging.backend_sessions as b
where b.session_id is not null
qualify row_number() over (
    partition by b.session_id
    order by b.stopped_at is null, b.source_file desc, b.record_no desc
) = 1
