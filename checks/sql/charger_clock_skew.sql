-- Chargers whose payload clock runs more than $tolerance_s from the CSMS receive clock,
-- judged on the median over at least $min_samples live frames, or over fewer when all of
-- them are stamped later than they arrived, which no queuing explains (recon.charger_clock).
-- Also chargers whose clock stepped back by more than $tolerance_s: they stamped a stop
-- before its own start (has_clock_step), seen without any CSMS clock (bare captures too).
-- One finding per charger, both reasons in its evidence.
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
        'frames_receive_time_unknown_ignored', n_receive_unknown_ignored,
        'transactions_stopped_before_start', stop_before_start_transactions,
        'max_stop_before_start_s', max_stop_before_start_s,
        'tolerance_s', $tolerance_s,
        'min_samples', $min_samples,
        'compared', 'OCPP payload timestamp (charger clock) minus received_at (CSMS clock); '
            || 'a transaction''s stop stamp minus its start stamp (charger clock)'
    ) as evidence,
    case
        when is_skew then format(
            'Charger {} stamps its messages {} s {} the CSMS clock (median of {} messages), so its own start and stop times are off by that much.',
            charge_point_id, round(abs(skew_s))::bigint, case when skew_s > 0 then 'ahead of' else 'behind' end, n_used)
        else format(
            'Charger {} stamped the stop of {} transaction(s) up to {} s before their own start, so its clock stepped back and its own start and stop times cannot be trusted.',
            charge_point_id, n_stops_before_start, round(max_stop_before_start_s)::bigint)
    end as explanation
from (
    select
        *,
        coalesce((n_used >= $min_samples or min_offset_s > $tolerance_s) and abs(skew_s) > $tolerance_s, false) as is_skew
    from recon.charger_clock
)
where is_skew or has_clock_step
