-- Defects of the reconstructed transactions of the run's days (every day when $all_days):
-- transaction ids held by more than one transaction of a charger (one of them on a run's
-- day), and transactions with negative energy.
-- Params:
--   $all_days (BOOLEAN): the run is not partitioned; judge every transaction.
--   $days (DATE[]): the run's days.
-- The day of a transaction is the one pipeline/partitioned.py files it under.
with tx as (
    select
        t.*,
        $all_days or coalesce(list_contains($days::date[],
            cast(coalesce(t.start_received_at, t.started_at, t.stop_received_at) as date)), false) as in_run,
    from lineage.transactions as t
)

select
    (select count(*) from (
        select charge_point_id, transaction_id from tx
        where transaction_id is not null
        group by all having count(*) > 1 and bool_or(in_run))),
    (select count(*) from tx where in_run and energy_kwh < 0)
