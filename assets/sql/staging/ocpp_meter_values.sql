-- staging.ocpp_meter_values: one row per sampled value of MeterValues, StopTransaction
-- transactionData and TransactionEvent meterValue, normalized to kWh / kW (value) with
-- the value as sent kept in value_raw and unit. Retransmitted frames are left out.
-- Params: $milli_units (VARCHAR[], lower case): units that are 1/1000 of the stored unit.
with frames as (
    select
        charge_point_id,
        received_at,
        action as origin,
        ocpp_version,
        source_file,
        record_no,
        case action
            when 'MeterValues' then coalesce(
                try_cast(payload ->> 'connectorId' as integer), try_cast(payload ->> 'evseId' as integer)
            )
            when 'TransactionEvent' then try_cast(payload -> 'evse' ->> 'id' as integer)
        end as connector_id,
        case action
            when 'TransactionEvent' then payload -> 'transactionInfo' ->> 'transactionId'
            else payload ->> 'transactionId'
        end as transaction_id,
        case action when 'StopTransaction' then payload -> 'transactionData' else payload -> 'meterValue' end
            as meter_value_json,
    from staging.ocpp_frames
    where msg_type = 2
        and direction = 'in'
        and not is_retransmit
        and action in ('MeterValues', 'StopTransaction', 'TransactionEvent')
),

meter_values as (
    select
        * exclude (meter_value_json),
        unnest(from_json(
            meter_value_json,
            '[{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "measurand": "VARCHAR",
               "unit": "VARCHAR", "phase": "VARCHAR", "context": "VARCHAR", "location": "VARCHAR",
               "format": "VARCHAR", "unitOfMeasure": {"unit": "VARCHAR", "multiplier": "INTEGER"}}]}]'
        )) as mv,
    from frames
    where json_type(meter_value_json) = 'ARRAY'
),

sampled as (
    select
        * exclude (mv),
        try_cast(mv.timestamp as timestamptz) as sampled_at,
        unnest(mv.sampledValue) as sv,
    from meter_values
),

typed as (
    select
        charge_point_id,
        connector_id,
        transaction_id,
        sampled_at,
        received_at,
        coalesce(nullif(sv.measurand, ''), 'Energy.Active.Import.Register') as measurand,
        sv.phase,
        coalesce(sv.unit, sv.unitOfMeasure.unit) as unit,
        sv.context,
        sv.location,
        sv.format,
        sv.value as value_raw,
        try_cast(sv.value as double) * pow(10, coalesce(sv.unitOfMeasure.multiplier, 0)) as value_as_sent,
        origin,
        ocpp_version,
        source_file,
        record_no,
    from sampled
),

-- Spec default unit when none is sent; mirrors pipeline.models.ocpp.default_unit.
united as (
    select
        *,
        coalesce(unit, case
            when measurand like 'Energy.Reactive%' then 'varh'
            when measurand like 'Energy.Apparent%' then 'VAh'
            when measurand like 'Energy.%' then 'Wh'
            when measurand like 'Power.Reactive%' then 'var'
            when measurand = 'Power.Factor' then null
            when measurand like 'Power.%' then 'W'
            when measurand like 'Current.%' then 'A'
            when measurand = 'Voltage' then 'V'
            when measurand = 'SoC' then 'Percent'
            when measurand = 'Frequency' then 'Hz'
        end) as unit_effective,
    from typed
)

select
    charge_point_id,
    connector_id,
    transaction_id,
    sampled_at,
    received_at,
    measurand,
    phase,
    unit,
    context,
    location,
    value_raw,
    case when lower(unit_effective) in $milli_units then value_as_sent / 1000 else value_as_sent end as value,
    case
        when lower(unit_effective) in $milli_units then 'k' || unit_effective
        else unit_effective
    end as value_unit,
    origin,
    ocpp_version,
    format,
    source_file,
    record_no,
from united
