-- CDRs whose total (excl. VAT) is not what the CDR's own tariff version gives for its own
-- charging periods (recon.session_prices). A CPO may round each cost field to cents before
-- adding them, so the smaller of the exact and the cent-rounded difference counts.
-- A CDR consistent with a stale version is stale_tariff, not this (priced under that version).
with d as (
    select
        p.*,
        least(
            abs(p.cdr_total_cost_excl_vat - p.price_cdr_tariff_excl_vat),
            abs(p.cdr_total_cost_excl_vat - p.price_cdr_tariff_cents_excl_vat)
        ) as diff
    from recon.session_prices as p
    where p.cdr_total_cost_excl_vat is not null and p.price_cdr_tariff_excl_vat is not null
)

select
    d.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
    s.backend_session_id, d.cdr_id,
    null::timestamptz as interval_start,
    d.diff as money_at_risk,
    d.currency,
    json_object(
        'cdr_total_cost_excl_vat', d.cdr_total_cost_excl_vat,
        'recomputed_excl_vat', d.price_cdr_tariff_excl_vat,
        'recomputed_cent_rounded_excl_vat', d.price_cdr_tariff_cents_excl_vat,
        'difference', round(d.diff, 4),
        'tolerance', $tolerance,
        'tariff_version', d.cdr_tariff_version_id,
        'tariff_version_known_from', d.cdr_tariff_source,
        'breakdown', d.breakdown_cdr_tariff,
        'sources', 'cdr: OCPI CDR total_cost and charging_periods; recomputed: pipeline.tariffs engine'
    ) as evidence,
    format(
        'The CDR charges {} {} but its own tariff and charging periods come to {}, a difference of {}.',
        d.cdr_total_cost_excl_vat, d.currency, round(d.price_cdr_tariff_excl_vat, 2), round(d.diff, 2)
    ) as explanation
from d
left join lineage.sessions as s using (session_key)
where d.diff > $tolerance + 0.000001
