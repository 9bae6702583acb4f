-- Transaction events that no row of lineage.transactions holds, among the events whose
-- transaction belongs to the run's days (all events when $all_days).
-- Params:
--   $all_days (BOOLEAN): the run is not partitioned; judge every event.
--   $days (DATE[]): the run's days.
-- An event's transaction is filed under the day lineage.transactions gives it: the CSMS
-- receive time of its start, else of its first frame (a stop whose start was lost). The
-- events of one (charger, transaction id) share that day, so a stop after midnight is
-- judged with its start's day, and a day written by a later run is not judged now.
-- 2.0.1 events name their transaction; 1.6 stops name the CSMS id (any alias).
with judged as (
    select
        e.*,
        cast(coalesce(
            min(e.received_at) filter (where e.event_type = 'started') over tx,
            min(e.received_at) over tx
        ) as date) as tx_day,
    from staging.ocpp_transaction_events as e
    where not e.is_retransmit and e.transaction_id is not null
    window tx as (partition by e.charge_point_id, e.transaction_id)
)

select e.charge_point_id, e.transaction_id, e.event_type, e.source_file, e.record_no
from judged as e
where (e.ocpp_version = '2.0.1' or e.event_type = 'ended')
    and ($all_days or list_contains($days::date[], e.tx_day))
    and not exists (
        select 1 from lineage.transactions as t
        where t.charge_point_id = e.charge_point_id and list_contains(t.transaction_ids, e.transaction_id)
    )
order by e.source_file, e.record_no
limit 10
