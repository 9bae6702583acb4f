-- staging.ocpp_boots: BootNotification and Heartbeat CALLs with the CSMS's answer,
-- whose currentTime is the CSMS clock the charger is told to follow.
select
    charge_point_id,
    action,
    call_at as requested_at,
    answer_at as answered_at,
    latency_ms,
    try_cast(answer ->> 'currentTime' as timestamptz) as csms_current_at,
    answer ->> 'status' as status,
    try_cast(answer ->> 'interval' as integer) as interval_s,
    coalesce(payload ->> 'chargePointVendor', payload -> 'chargingStation' ->> 'vendorName') as vendor,
    coalesce(payload ->> 'chargePointModel', payload -> 'chargingStation' ->> 'model') as model,
    coalesce(payload ->> 'firmwareVersion', payload -> 'chargingStation' ->> 'firmwareVersion')
        as firmware_version,
    coalesce(
        payload ->> 'chargePointSerialNumber', payload ->> 'chargeBoxSerialNumber',
        payload -> 'chargingStation' ->> 'serialNumber'
    ) as serial_number,
    payload ->> 'reason' as boot_reason,
    ocpp_version,
    msg_id,
    source_file,
    record_no,
from staging.ocpp_calls
where action in ('BootNotification', 'Heartbeat') and direction = 'in' and not is_retransmit
