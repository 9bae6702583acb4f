-- incomplete_session: the charger's record of a transaction is not whole.
--   no_stop: a start and no stop, once evidence shows the session is over: the backend has a
--     stop, a later transaction started on the same connector, the connector reported
--     Available or Finishing after the session's last sign of life (start or meter value),
--     the charger booted after it, or the data reaches more than $max_session_h beyond it.
--     Silence alone is no evidence: many chargers send no MeterValues at all, and a car
--     stays plugged in for hours after it is full. Only a transaction the charger sampled
--     regularly (>= $silence_min_samples samples) that then went silent for more than
--     max($silence_min_h, $silence_gaps x its own median sampling interval) while the
--     charger kept talking to the CSMS (heartbeats, other frames) has ended by its silence.
--     (The backend row of such a session usually still says ACTIVE.)
--   stop_from_offline_queue: the stop reached the CSMS only from the charger's offline
--     queue (lineage.transactions.stop_from_offline_queue), long after it happened.
--   interrupted: the stop reason is one of $interrupt_reasons (power loss, emergency stop,
--     reset, fault). EVDisconnected / Local / Remote are how sessions normally end.
-- Money: the session's billed (live CDR) or backend amount, whose figures rest on the
-- incomplete record; 0 when neither exists.
with
activity as (
    select
        charge_point_id, transaction_id, max(received_at) as last_received_at,
        count(*) as n_samples, median(gap_s) as median_gap_s
    from (
        select
            charge_point_id, transaction_id, received_at,
            epoch(received_at) - epoch(lag(received_at) over (
                partition by charge_point_id, transaction_id order by received_at)) as gap_s
        from staging.ocpp_meter_values
        where transaction_id is not null
    )
    group by all
),

heard as (
    select charge_point_id, max(received_at) as last_heard_at
    from staging.ocpp_frames
    group by all
),

data_end as (
    select greatest(
        (select max(greatest(coalesce(stop_received_at, start_received_at), start_received_at)) from lineage.transactions),
        (select max(last_received_at) from activity)
    ) as at
),

txn as (
    -- the latest start on each connector: a later one means this transaction is over
    select *, max(start_received_at) over (partition by charge_point_id, connector_id) as last_start_on_connector
    from lineage.transactions
),

tx as (
    select
        s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
        s.backend_session_id, s.cdr_id, s.currency, s.backend_stopped_at, s.backend_amount,
        s.cdr_total_cost_excl_vat, s.cdr_is_credit, s.cdr_is_credited,
        t.connector_id, t.has_start, t.has_stop, t.started_at, t.stopped_at, t.start_received_at,
        t.stop_received_at, t.stop_reason, t.stop_from_offline_queue,
        greatest(t.start_received_at, a.last_received_at) as last_activity_at,
        coalesce(a.n_samples, 0) as n_samples, a.median_gap_s,
        coalesce(t.connector_id is not null and t.last_start_on_connector > t.start_received_at, false)
            as later_transaction,
    from lineage.sessions as s
    inner join txn as t
        on t.charge_point_id = s.charge_point_id and t.transaction_id = s.ocpp_transaction_id
    left join activity as a
        on a.charge_point_id = t.charge_point_id and a.transaction_id = t.transaction_id
),

open_tx as (
    -- only transactions without a stop need to know what the charger said after them
    select session_key, charge_point_id, connector_id, last_activity_at, n_samples, median_gap_s
    from tx
    where has_start and not has_stop
),

idle as (
    select o.session_key, min(st.status_at) as idle_status_at
    from open_tx as o
    inner join staging.ocpp_status as st
        on st.charge_point_id = o.charge_point_id and st.connector_id = o.connector_id
    where st.status in ('Available', 'Finishing') and st.status_at > o.last_activity_at
    group by all
),

rebooted as (
    select o.session_key, min(b.requested_at) as boot_at
    from open_tx as o
    inner join staging.ocpp_boots as b on b.charge_point_id = o.charge_point_id
    where b.action = 'BootNotification' and b.requested_at > o.last_activity_at
    group by all
),

ended as (
    select
        o.session_key,
        i.idle_status_at,
        r.boot_at,
        -- a regularly sampled transaction, silent while its charger kept talking
        case when o.n_samples >= $silence_min_samples
                and h.last_heard_at > o.last_activity_at + to_seconds(cast(greatest(
                    $silence_min_h * 3600, $silence_gaps * coalesce(o.median_gap_s, 0)) as bigint))
            then h.last_heard_at end as heard_silent_until
    from open_tx as o
    left join heard as h using (charge_point_id)
    left join idle as i using (session_key)
    left join rebooted as r using (session_key)
),

reasons as (
    select
        tx.*,
        e.idle_status_at, e.boot_at, e.heard_silent_until,
        d.at as data_end_at,
        list_filter([
            case
                when has_start and not has_stop
                    and (backend_stopped_at is not null or later_transaction
                         or e.idle_status_at is not null or e.boot_at is not null
                         or e.heard_silent_until is not null
                         or last_activity_at < d.at - to_minutes(cast($max_session_h * 60 as bigint)))
                    then 'no_stop'
            end,
            case when has_stop and stop_from_offline_queue then 'stop_from_offline_queue' end,
            case when has_stop and list_contains($interrupt_reasons, stop_reason) then 'interrupted' end
        ], lambda r: r is not null) as found_reasons,
    from tx
    cross join data_end as d
    left join ended as e using (session_key)
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id, backend_session_id, cdr_id,
    null::timestamptz as interval_start,
    coalesce(
        case when not cdr_is_credit and not cdr_is_credited then cdr_total_cost_excl_vat end, backend_amount, 0
    ) as money_at_risk,
    currency,
    json_object(
        'reasons', found_reasons, 'has_start', has_start, 'has_stop', has_stop,
        'started_at', started_at, 'stopped_at', stopped_at, 'stop_received_at', stop_received_at,
        'stop_reason', stop_reason, 'backend_stopped_at', backend_stopped_at,
        'later_transaction_on_connector', later_transaction, 'last_activity_at', last_activity_at,
        'connector_idle_at', idle_status_at, 'boot_at', boot_at,
        'n_samples', n_samples, 'median_sample_gap_s', median_gap_s,
        'charger_heard_silent_until', heard_silent_until,
        'data_end_at', data_end_at, 'max_session_h', $max_session_h,
        'source', 'lineage.transactions (OCPP start/stop events)'
    ) as evidence,
    case
        when list_contains(found_reasons, 'no_stop') then format(
            'Charger {} never reported the end of transaction {}, so its stop time and energy are not known from the charger.',
            charge_point_id, ocpp_transaction_id)
        when list_contains(found_reasons, 'interrupted') then format(
            'Transaction {} on charger {} ended because of {}, not because the driver stopped it.',
            ocpp_transaction_id, charge_point_id, stop_reason)
        else format(
            'The end of transaction {} on charger {} only arrived later from the charger''s offline queue.',
            ocpp_transaction_id, charge_point_id)
    end as explanation,
from reasons
where len(found_reasons) > 0
