-- lineage.match_ocpp: one row per OCPP transaction, shaped for matching.
-- ocpp_ref is `<charge_point_id>:<transaction_id>`; a transaction id seen twice on one
-- charger (reuse after a reboot) or missing gets its start time appended so refs stay unique.
with tx as (
    select
        t.charge_point_id,
        try_cast(t.connector_id as integer) as connector_id,
        cast(t.transaction_id as varchar) as transaction_id,
        t.id_tag,
        t.started_at,
        t.stopped_at,
        t.start_received_at,
        t.stop_received_at,
        t.energy_kwh,
        count(*) over (
            partition by t.charge_point_id, cast(t.transaction_id as varchar)
        ) as n_same_id,
    from lineage.transactions as t
),

reffed as (
    select
        *,
        case
            when transaction_id is null or n_same_id > 1
                then charge_point_id || ':' || coalesce(transaction_id, '') || '@'
                || coalesce(cast(connector_id as varchar), '') || '/'
                || coalesce(cast(epoch_ms(coalesce(started_at, stopped_at, start_received_at, stop_received_at)) as varchar), '')
            else charge_point_id || ':' || transaction_id
        end as ocpp_ref,
    from tx
)

select
    ocpp_ref,
    charge_point_id,
    connector_id,
    transaction_id,
    id_tag,
    sha256($token_key || id_tag) as token_hash,
    started_at,
    stopped_at,
    start_received_at,
    stop_received_at,
    energy_kwh,
    -- The CSMS clock first: backend and CDR times come from the CSMS side, and chargers drift.
    coalesce(start_received_at, started_at, stop_received_at, stopped_at) as match_at,
from reffed
qualify row_number() over (partition by ocpp_ref order by started_at nulls last, stopped_at nulls last) = 1
