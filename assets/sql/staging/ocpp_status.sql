-- staging.ocpp_status: StatusNotification, one row per (non-retransmitted) CALL.
-- For 2.0.1 connector_id holds the EVSE id (as the registry does). status_at is the
-- charger's timestamp, or the CSMS receive time when the charger sent none or a 1970 one.
-- Params: $epoch_before (TIMESTAMPTZ): earlier charger timestamps mean an unset clock.
with frames as (
    select *
    from staging.ocpp_frames
    where msg_type = 2 and direction = 'in' and action = 'StatusNotification' and not is_retransmit
),

typed as (
    select
        charge_point_id,
        case
            when ocpp_version = '2.0.1' then coalesce(
                try_cast(payload ->> 'evseId' as integer), try_cast(payload ->> 'connectorId' as integer)
            )
            else try_cast(payload ->> 'connectorId' as integer)
        end as connector_id,
        try_cast(payload ->> 'connectorId' as integer) as connector_no,
        coalesce(payload ->> 'status', payload ->> 'connectorStatus') as status,
        payload ->> 'errorCode' as error_code,
        payload ->> 'info' as info,
        payload ->> 'vendorErrorCode' as vendor_error_code,
        try_cast(payload ->> 'timestamp' as timestamptz) as event_at,
        received_at,
        ocpp_version,
        msg_id,
        source_file,
        record_no,
    from frames
)

select
    charge_point_id,
    connector_id,
    status,
    error_code,
    case when event_at >= $epoch_before then event_at else received_at end as status_at,
    received_at,
    event_at,
    connector_no,
    info,
    vendor_error_code,
    ocpp_version,
    msg_id,
    source_file,
    record_no,
from typed
