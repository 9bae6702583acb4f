-- Chargers whose payload clock runs more than $tolerance_s from the CSMS receive clock,
-- judged on the median over at least $min_samples live frames, or over fewer when all of
-- them are stamped later than they arrived, which no queuing explains (recon.charger_clock).
select
    null::varchar as session_key,
    site_id,
    site_type,
    charge_point_id,
    null::varchar as evse_uid,
    null::varchar as ocpp_transaction_id,
    null::varchar as backend_session_id,
    null::varchar as cdr_id,
    null::timestamptz as interval_start,
    0 as money_at_risk,
    null::varchar as currency,
    json_object(
        'skew_s', skew_s,
        'skew_p25_s', skew_p25_s,
        'skew_p75_s', skew_p75_s,
        'frames_used', n_used,
        'frames_offline_queued_ignored', n_offline_ignored,
        'frames_epoch_ignored', n_epoch_ignored,
        'tolerance_s', $tolerance_s,
        'min_samples', $min_samples,
        'compared', 'OCPP payload timestamp (charger clock) minus received_at (CSMS clock)'
    ) as evidence,
    format(
        'Charger {} stamps its messages {} s {} the CSMS clock (median of {} messages), so its own start and stop times are off by that much.',
        charge_point_id, round(abs(skew_s))::bigint, case when skew_s > 0 then 'ahead of' else 'behind' end, n_used
    ) as explanation
from recon.charger_clock
where (n_used >= $min_samples or min_offset_s > $tolerance_s) and abs(skew_s) > $tolerance_s
