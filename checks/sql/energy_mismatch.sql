-- energy_mismatch: OCPP metered energy, backend energy and the live CDR's energy disagree
-- by more than the meter can explain. One finding per session.
--
-- Tolerance: max($abs_kwh, $rel x the largest energy) + $register_rounding_kwh (two Wh
-- registers each rounded half a Wh, and exports that round to 0.01 kWh), plus half the
-- resolution the backend export reports at: an export whose energies are all whole tenths
-- of a kWh (>= $resolution_min_rows rows) was rounded to 0.1 kWh and can be 0.05 kWh off.
-- Only complete records count: an OCPP transaction with a stop, a backend session with
-- stopped_at, a live (not credited) CDR. OCPP energy that meter_anomaly reports (register
-- rollback/reset, negative, unit suspect, above the EVSE's power) is left out, so one
-- root cause makes one finding; the backend and CDR are still compared.
-- Money: the spread x the session's unit price (live CDR total / CDR energy, else the
-- site's median CDR unit price).
with
live_cdr as (
    select
        m.session_key,
        arg_max(c.total_energy_kwh, c.last_updated_at) as cdr_energy_kwh,
        arg_max(c.total_cost_excl_vat, c.last_updated_at) as cdr_total_cost_excl_vat,
        arg_max(c.cdr_id, c.last_updated_at) as cdr_id,
    from (
        select session_key, cdr_ref, unnest(cdr_ids) as cdr_id from lineage.sessions where len(cdr_ids) > 0
    ) as m
    inner join lineage.match_cdrs as c
        on c.cdr_ref = split_part(m.cdr_ref, ':', 1) || ':' || split_part(m.cdr_ref, ':', 2) || ':' || m.cdr_id
    where c.is_live
    group by m.session_key
),

backend_resolution as (
    -- the coarsest step every energy of an export file is a multiple of
    select
        source_file,
        case
            when count(*) >= $resolution_min_rows
                and bool_and(abs(energy_kwh * 10 - round(energy_kwh * 10)) < 1e-6) then 0.1
            when count(*) >= $resolution_min_rows
                and bool_and(abs(energy_kwh * 100 - round(energy_kwh * 100)) < 1e-6) then 0.01
            else 0.001
        end as resolution_kwh
    from staging.backend_sessions
    where energy_kwh is not null
    group by source_file
),

backend_res as (
    select b.session_id, max(r.resolution_kwh) as resolution_kwh
    from staging.backend_sessions as b
    inner join backend_resolution as r using (source_file)
    group by b.session_id
),

site_price as (
    select site_id, median(cdr_total_cost_excl_vat / cdr_energy_kwh) as unit_price
    from lineage.sessions
    where cdr_energy_kwh >= 1 and cdr_total_cost_excl_vat > 0 and not cdr_is_credit
    group by site_id
),

sessions as (
    select
        s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
        s.backend_session_id, s.currency,
        l.cdr_id,
        t.anomalies,
        case
            when t.has_stop and s.ocpp_energy_kwh is not null then s.ocpp_energy_kwh
        end as ocpp_all_kwh,
        case
            when s.backend_stopped_at is not null then s.backend_energy_kwh
        end as backend_kwh,
        l.cdr_energy_kwh as cdr_kwh,
        l.cdr_total_cost_excl_vat,
        coalesce(br.resolution_kwh, 0.001) as backend_resolution_kwh,
        e.max_power_kw,
        greatest(date_diff('millisecond', t.started_at, t.stopped_at), 0) / 3600000.0 as duration_h,
    from lineage.sessions as s
    left join lineage.transactions as t
        on t.charge_point_id = s.charge_point_id and t.transaction_id = s.ocpp_transaction_id
    left join live_cdr as l on l.session_key = s.session_key
    left join backend_res as br on br.session_id = s.backend_session_id
    left join staging.evses as e
        on e.charge_point_id = s.charge_point_id and try_cast(e.connector_id as integer) = s.connector_id
),

judged as (
    select
        *,
        case
            when len(list_intersect(coalesce(anomalies, []), $ocpp_unreliable_anomalies)) > 0
                then 'meter anomaly: ' || array_to_string(list_intersect(anomalies, $ocpp_unreliable_anomalies), ', ')
            when ocpp_all_kwh < 0 then 'negative'
            when max_power_kw > 0 and duration_h > 0
                and ocpp_all_kwh > max_power_kw * duration_h * $power_margin + $abs_kwh
                then 'above what the EVSE can deliver'
        end as ocpp_excluded,
    from sessions
),

compared as (
    select
        *,
        case when ocpp_excluded is null then ocpp_all_kwh end as ocpp_kwh,
    from judged
),

spread as (
    select
        *,
        greatest(ocpp_kwh, backend_kwh, cdr_kwh) as hi_kwh,
        least(ocpp_kwh, backend_kwh, cdr_kwh) as lo_kwh,
        (ocpp_kwh is not null)::int + (backend_kwh is not null)::int + (cdr_kwh is not null)::int as n_sources,
    from compared
),

findings as (
    select
        sp.*,
        hi_kwh - lo_kwh as difference_kwh,
        greatest($abs_kwh, $rel * abs(hi_kwh)) + $register_rounding_kwh
            + case when backend_kwh is not null then backend_resolution_kwh / 2 else 0 end as tolerance_kwh,
        case
            when sp.cdr_kwh > 0 and sp.cdr_total_cost_excl_vat > 0 then sp.cdr_total_cost_excl_vat / sp.cdr_kwh
            else p.unit_price
        end as unit_price,
        case
            when sp.cdr_kwh > 0 and sp.cdr_total_cost_excl_vat > 0 then 'cdr total / cdr energy'
            when p.unit_price is not null then 'site median cdr unit price'
        end as unit_price_source,
    from spread as sp
    left join site_price as p using (site_id)
    where n_sources >= 2
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id, backend_session_id, cdr_id,
    null::timestamptz as interval_start,
    difference_kwh * coalesce(unit_price, 0) as money_at_risk,
    currency,
    json_object(
        'ocpp_energy_kwh', ocpp_kwh, 'ocpp_source', 'lineage.transactions.energy_kwh (charger meter)',
        'ocpp_excluded_reason', ocpp_excluded, 'ocpp_energy_as_reported_kwh', ocpp_all_kwh,
        'backend_energy_kwh', backend_kwh, 'backend_source', 'staging.backend_sessions.energy_kwh',
        'cdr_energy_kwh', cdr_kwh, 'cdr_source', 'staging.cdrs.total_energy_kwh (live CDR)',
        'backend_resolution_kwh', backend_resolution_kwh,
        'difference_kwh', round(difference_kwh, 4), 'tolerance_kwh', round(tolerance_kwh, 4),
        'unit_price', round(unit_price, 4), 'unit_price_source', unit_price_source
    ) as evidence,
    format(
        'The charger metered {}, the backend recorded {} and the CDR billed {}: a spread of {:.3f} kWh, above the {:.3f} kWh tolerance.',
        coalesce(printf('%.3f kWh', ocpp_kwh), 'no usable reading'),
        coalesce(printf('%.3f kWh', backend_kwh), 'nothing'),
        coalesce(printf('%.3f kWh', cdr_kwh), 'nothing'),
        difference_kwh, tolerance_kwh
    ) as explanation,
from findings
where difference_kwh > tolerance_kwh
