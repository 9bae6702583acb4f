-- staging.ocpp_transaction_events: OCPP 1.6 StartTransaction / StopTransaction and 2.0.1
-- TransactionEvent, one row per CALL from the charger (retransmissions kept, flagged).
-- 1.6 learns its transaction id from the CSMS's CALLRESULT to StartTransaction.
-- Payload timestamps are kept as sent, 1970 ones too: lineage marks them.
with calls as (
    select *
    from staging.ocpp_calls
    where direction = 'in' and action in ('StartTransaction', 'StopTransaction', 'TransactionEvent')
),

-- The energy register a TransactionEvent carried in its meterValue (latest sample).
event_registers as (
    select
        source_file,
        record_no,
        arg_max(value, sampled_at) as register_kwh,
        arg_max(value_raw, sampled_at) as register_raw,
        arg_max(coalesce(unit, 'Wh'), sampled_at) as register_unit,
    from staging.ocpp_meter_values
    where origin = 'TransactionEvent'
        and measurand = 'Energy.Active.Import.Register'
        and phase is null
        and value is not null
    group by all
),

events as (
    select
        c.charge_point_id,
        case c.action
            when 'StartTransaction' then try_cast(c.payload ->> 'connectorId' as integer)
            when 'TransactionEvent' then try_cast(c.payload -> 'evse' ->> 'id' as integer)
        end as connector_id,
        c.ocpp_version,
        c.action,
        case c.action
            when 'StartTransaction' then 'started'
            when 'StopTransaction' then 'ended'
            else lower(c.payload ->> 'eventType')
        end as event_type,
        case c.action
            when 'StartTransaction' then c.answer ->> 'transactionId'
            when 'StopTransaction' then c.payload ->> 'transactionId'
            else c.payload -> 'transactionInfo' ->> 'transactionId'
        end as transaction_id,
        try_cast(c.payload ->> 'seqNo' as integer) as seq_no,
        -- staging.ocpp_frames already replaced the token by its keyed hash
        nullif(coalesce(c.payload ->> 'idTag', c.payload -> 'idToken' ->> 'idToken'), '') as id_tag_hash,
        try_cast(c.payload ->> 'timestamp' as timestamptz) as event_at,
        c.call_at as received_at,
        case c.action
            when 'StartTransaction' then try_cast(c.payload ->> 'meterStart' as double)
            when 'StopTransaction' then try_cast(c.payload ->> 'meterStop' as double)
            else try_cast(r.register_raw as double)
        end as register_value_raw,
        case when c.action = 'TransactionEvent' then r.register_unit else 'Wh' end as register_unit,
        coalesce(c.payload ->> 'reason', c.payload -> 'transactionInfo' ->> 'stoppedReason') as stop_reason,
        c.payload ->> 'triggerReason' as trigger_reason,
        c.payload -> 'transactionInfo' ->> 'chargingState' as charging_state,
        -- 2.0.1: the charger says the event happened while it had no connection
        coalesce(try_cast(c.payload ->> 'offline' as boolean), false) as is_offline,
        coalesce(c.answer -> 'idTagInfo' ->> 'status', c.answer -> 'idTokenInfo' ->> 'status') as auth_status,
        c.answer_type,
        c.msg_id,
        c.is_retransmit,
        c.source_file,
        c.record_no,
        r.register_kwh as event_register_kwh,
    from calls as c
    left join event_registers as r on c.source_file = r.source_file and c.record_no = r.record_no
)

select
    charge_point_id,
    connector_id,
    ocpp_version,
    event_type,
    transaction_id,
    seq_no,
    id_tag_hash,
    event_at,
    received_at,
    -- 1.6 meterStart/meterStop are Wh by the spec; -1 and other negatives mean "no reading".
    case
        when action = 'TransactionEvent' then event_register_kwh
        when register_value_raw >= 0 then register_value_raw / 1000
    end as meter_register_kwh,
    register_value_raw,
    register_unit,
    stop_reason,
    trigger_reason,
    charging_state,
    is_offline,
    auth_status,
    answer_type,
    action,
    msg_id,
    is_retransmit,
    source_file,
    record_no,
from events
