-- orphan_cdr: a live CDR that matches no OCPP transaction and no backend session (the
-- lineage made it a session of its own). Credit CDRs, and CDRs a credit cancelled, are
-- not flagged: they bill nothing. Money: the CDR's total cost.
select
    s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid,
    null::varchar as ocpp_transaction_id, null::varchar as backend_session_id, s.cdr_id,
    null::timestamptz as interval_start,
    coalesce(s.cdr_total_cost_excl_vat, 0) as money_at_risk,
    s.currency,
    json_object(
        'cdr_ref', s.cdr_ref, 'cdr_started_at', s.cdr_started_at, 'cdr_stopped_at', s.cdr_stopped_at,
        'cdr_energy_kwh', s.cdr_energy_kwh, 'cdr_total_cost_excl_vat', s.cdr_total_cost_excl_vat,
        'evse_uid', s.evse_uid, 'ocpi_session_id', s.ocpi_session_id,
        'ocpp_match', 'none', 'backend_match', 'none', 'source', 'lineage.sessions (anchor: cdr)'
    ) as evidence,
    format(
        'CDR {} bills {} {} for {} kWh, but neither the charger nor the backend recorded a matching session.',
        s.cdr_id, coalesce(printf('%.2f', s.cdr_total_cost_excl_vat), '?'), coalesce(s.currency, ''),
        coalesce(printf('%.3f', s.cdr_energy_kwh), '?')
    ) as explanation,
from lineage.sessions as s
where s.has_cdr and not s.has_ocpp and not s.has_backend
    and not s.cdr_is_credit and not s.cdr_is_credited
