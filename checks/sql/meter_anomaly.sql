-- meter_anomaly: the charger's meter readings for one transaction cannot all be true.
-- Reasons (several may hold; one finding per session lists them all):
--   lineage.transactions.anomalies in $anomaly_tags: a register that steps back or
--     resets within the transaction, stop register below start (negative energy), a unit
--     label the energy contradicts; meter_stop_missing only for OCPP 1.6, where meterStop
--     is required (a 2.0.1 Ended event may legally carry no meter value).
--   meter_stop_negative: meterStop -1 (or any negative register), the firmware's "unknown".
--   over_power: energy > max_power_kw (registry) x duration x $power_margin + $slack_kwh.
--   unit_confusion: the energy as labelled is ~1000x the backend's or 1/1000 of it
--     (within a factor $unit_ratio_tolerance), i.e. kWh sent as Wh or the other way.
-- A register that restarts per transaction or on a reboot between transactions is not
-- looked at: every reading here is within one transaction. A rollback seen only in a
-- transaction stamped with an unset (1970) clock and whose stop register is still above
-- its start is sample ordering, not the meter, and is not flagged.
with
tx as (
    select
        s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
        s.backend_session_id, s.cdr_id, s.currency, s.backend_energy_kwh, s.cdr_energy_kwh,
        s.cdr_total_cost_excl_vat,
        t.ocpp_version, t.anomalies, t.meter_start_kwh, t.meter_stop_kwh, t.energy_kwh, t.energy_as_labelled_kwh,
        t.started_at, t.stopped_at,
        greatest(date_diff('millisecond', t.started_at, t.stopped_at), 0) / 3600000.0 as duration_h,
        e.max_power_kw,
    from lineage.sessions as s
    inner join lineage.transactions as t
        on t.charge_point_id = s.charge_point_id and t.transaction_id = s.ocpp_transaction_id
    left join staging.evses as e
        on e.charge_point_id = s.charge_point_id and try_cast(e.connector_id as integer) = s.connector_id
),

reasons as (
    select
        *,
        list_filter(
            list_intersect(coalesce(anomalies, []), $anomaly_tags),
            lambda a: not (
                a in ('register_rollback', 'register_reset')
                and list_contains(anomalies, 'epoch_timestamp')
                and not list_contains(anomalies, 'negative_energy')
            )
            and (a <> 'meter_stop_missing' or ocpp_version = '1.6')
        ) as tagged,
        coalesce(meter_stop_kwh < 0 or meter_start_kwh < 0, false) as register_negative,
        coalesce(
            max_power_kw > 0 and duration_h > 0
            and energy_kwh > max_power_kw * duration_h * $power_margin + $slack_kwh,
            false
        ) as over_power,
        coalesce(
            backend_energy_kwh > $slack_kwh and energy_as_labelled_kwh > 0
            and (
                energy_as_labelled_kwh / backend_energy_kwh between 1000 / $unit_ratio_tolerance and 1000 * $unit_ratio_tolerance
                or backend_energy_kwh / energy_as_labelled_kwh between 1000 / $unit_ratio_tolerance and 1000 * $unit_ratio_tolerance
            ),
            false
        ) as unit_ratio,
    from tx
),

found as (
    select
        *,
        list_distinct(list_concat(
            tagged,
            case when register_negative then ['meter_stop_negative'] else [] end,
            case when over_power then ['over_power'] else [] end,
            case when unit_ratio then ['unit_confusion'] else [] end
        )) as found_reasons,
    from reasons
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id, backend_session_id, cdr_id,
    null::timestamptz as interval_start,
    -- The billed energy rests on this meter: at stake is what the CDR charged for energy
    -- the meter cannot vouch for, bounded by the CDR itself.
    case
        when cdr_energy_kwh > 0 and cdr_total_cost_excl_vat > 0 then
            least(cdr_total_cost_excl_vat,
                  abs(coalesce(energy_kwh, 0) - coalesce(backend_energy_kwh, cdr_energy_kwh))
                  * cdr_total_cost_excl_vat / cdr_energy_kwh)
        else 0
    end as money_at_risk,
    currency,
    json_object(
        'reasons', list_sort(found_reasons), 'lineage_anomalies', anomalies,
        'meter_start_kwh', meter_start_kwh, 'meter_stop_kwh', meter_stop_kwh,
        'ocpp_energy_kwh', energy_kwh, 'ocpp_energy_as_labelled_kwh', energy_as_labelled_kwh,
        'backend_energy_kwh', backend_energy_kwh, 'cdr_energy_kwh', cdr_energy_kwh,
        'duration_h', round(duration_h, 4), 'max_power_kw', max_power_kw,
        'power_margin', $power_margin, 'unit_ratio_tolerance', $unit_ratio_tolerance,
        'source', 'lineage.transactions (OCPP start/stop registers and meter values), staging.evses.max_power_kw'
    ) as evidence,
    format(
        'The charger''s meter readings for transaction {} are not plausible ({}), so its {} kWh cannot be trusted for billing.',
        ocpp_transaction_id, array_to_string(list_sort(found_reasons), ', '),
        coalesce(printf('%.3f', energy_kwh), 'unknown')
    ) as explanation,
from found
where len(found_reasons) > 0
