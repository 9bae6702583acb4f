-- lineage.match_ocpp: one row per OCPP transaction, shaped for matching.
-- ocpp_ref is `<charge_point_id>:<transaction_id>`; a transaction id seen twice on one
-- charger (reuse after a reboot) or missing gets its start time appended so refs stay unique.
-- started_csms_at / stopped_csms_at put the charger's own times on the CSMS clock with the
-- charger's median offset (received - sent): one clock to compare with backend and CDR,
-- robust to a skewed charger clock and to the few messages an offline queue delivered late.
with tx as (
    select
        t.charge_point_id,
        try_cast(t.connector_id as integer) as connector_id,
        cast(t.transaction_id as varchar) as transaction_id,
        t.id_tag_hash,
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

offsets as (
    select
        charge_point_id,
        median(offset_s) as clock_offset_s,
    from (
        select charge_point_id, epoch(start_received_at) - epoch(started_at) as offset_s from tx
        union all
        select charge_point_id, epoch(stop_received_at) - epoch(stopped_at) as offset_s from tx
    ) as d
    where offset_s is not null
    group by charge_point_id
),

reffed as (
    select
        t.*,
        case
            when t.transaction_id is null or t.n_same_id > 1
                then t.charge_point_id || ':' || coalesce(t.transaction_id, '') || '@'
                || coalesce(cast(t.connector_id as varchar), '') || '/'
                || coalesce(cast(epoch_ms(coalesce(
                    t.started_at, t.stopped_at, t.start_received_at, t.stop_received_at
                )) as varchar), '')
            else t.charge_point_id || ':' || t.transaction_id
        end as ocpp_ref,
        coalesce(
            t.started_at + to_microseconds(cast(coalesce(f.clock_offset_s, 0) * 1e6 as bigint)),
            t.start_received_at
        ) as started_csms_at,
        coalesce(
            t.stopped_at + to_microseconds(cast(coalesce(f.clock_offset_s, 0) * 1e6 as bigint)),
            t.stop_received_at
        ) as stopped_csms_at,
        f.clock_offset_s,
    from tx as t
    left join offsets as f on f.charge_point_id = t.charge_point_id
)

select
    ocpp_ref,
    charge_point_id,
    connector_id,
    transaction_id,
    -- Keyed hash (pipeline.privacy), as staging gives backend and CDR tokens.
    id_tag_hash as token_hash,
    started_at,
    stopped_at,
    start_received_at,
    stop_received_at,
    energy_kwh,
    started_csms_at,
    stopped_csms_at,
    clock_offset_s,
    coalesce(started_csms_at, stopped_csms_at) as match_at,
from reffed
qualify row_number() over (partition by ocpp_ref order by started_at nulls last, stopped_at nulls last) = 1
