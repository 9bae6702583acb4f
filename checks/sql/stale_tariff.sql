-- CDRs priced with a tariff version other than the one in force at session start
-- (recon.session_prices: the CDR's own version is embedded, referenced, or the one whose
-- price reproduces the CDR total), when the two versions price differently: a tariff
-- re-published with a new last_updated and the same elements, prices, restrictions,
-- currency and min/max (pipeline.tariffs.history.price_content) is not stale.
-- Money: what the version in force would have charged, against the CDR total.
select
    p.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
    s.backend_session_id, p.cdr_id,
    null::timestamptz as interval_start,
    least(
        abs(p.price_in_force_excl_vat - p.cdr_total_cost_excl_vat),
        abs(p.price_in_force_cents_excl_vat - p.cdr_total_cost_excl_vat)
    ) as money_at_risk,
    p.currency,
    json_object(
        'session_started_at', p.started_at,
        'cdr_tariff_version', p.cdr_tariff_version_id,
        'cdr_tariff_version_known_from', p.cdr_tariff_source,
        'tariff_version_in_force', p.in_force_version_id,
        'in_force_since', p.in_force_valid_from_at,
        'versions_price_alike', p.cdr_tariff_same_prices,
        'cdr_total_cost_excl_vat', p.cdr_total_cost_excl_vat,
        'price_under_cdr_version_excl_vat', p.price_cdr_tariff_excl_vat,
        'price_under_version_in_force_excl_vat', p.price_in_force_excl_vat,
        'sources', 'cdr: OCPI CDR; versions: staging.tariff_versions; prices: pipeline.tariffs engine'
    ) as evidence,
    format(
        'This CDR was priced with tariff version {} although version {} applied when the session started, so the customer paid {} {} instead of {}.',
        p.cdr_tariff_version_id, p.in_force_version_id, p.cdr_total_cost_excl_vat, p.currency,
        round(p.price_in_force_excl_vat, 2)
    ) as explanation
from recon.session_prices as p
left join lineage.sessions as s using (session_key)
where p.cdr_tariff_version_id is not null
    and p.in_force_version_id is not null
    and p.cdr_tariff_version_id <> p.in_force_version_id
    and p.cdr_tariff_source in ('embedded', 'embedded_reference', 'price_match')
    and not coalesce(p.cdr_tariff_same_prices, false)
