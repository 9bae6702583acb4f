-- Sessions during which a new version of their tariff came into force. OCPI prices the whole
-- session under the version valid at start, so this is information for the clerk; money is
-- what the session would cost under the new version instead (0 when it cannot be priced).
-- A CDR that matches no charger or backend record is orphan_cdr's finding: its times are
-- only the CDR's claim, so it is not reported again here.
select
    p.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
    s.backend_session_id, p.cdr_id,
    null::timestamptz as interval_start,
    coalesce(abs(p.price_next_version_excl_vat - p.price_in_force_excl_vat), 0) as money_at_risk,
    p.currency,
    json_object(
        'session_started_at', p.started_at,
        'session_stopped_at', p.stopped_at,
        'tariff_version_at_start', p.in_force_version_id,
        'new_version', p.next_version_id,
        'new_version_in_force_from', p.next_valid_from_at,
        'price_under_version_at_start_excl_vat', p.price_in_force_excl_vat,
        'price_under_new_version_excl_vat', p.price_next_version_excl_vat,
        'note', case when p.price_next_version_excl_vat is null or p.price_in_force_excl_vat is null
            then 'session could not be priced under both versions; money at risk 0' end,
        'sources', 'versions: staging.tariff_versions; prices: pipeline.tariffs engine'
    ) as evidence,
    format(
        'Tariff {} changed at {} while this session was running; it should be billed under the version valid at its start ({} rather than {} under the new one).',
        p.tariff_id, strftime(p.next_valid_from_at, '%Y-%m-%d %H:%M UTC'),
        coalesce(round(p.price_in_force_excl_vat, 2)::varchar, '?'),
        coalesce(round(p.price_next_version_excl_vat, 2)::varchar, '?')
    ) as explanation
from recon.session_prices as p
left join lineage.sessions as s using (session_key)
where p.next_version_id is not null
    and (s.ocpp_transaction_id is not null or s.backend_session_id is not null)
