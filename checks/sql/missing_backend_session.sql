-- missing_backend_session: the charger ran a transaction (OCPP start or stop, more than
-- $min_energy_kwh metered) that the backend has no session for.
-- Money: the price recomputed from the tariff in force, else the live CDR's total, else
-- OCPP energy x the site's median CDR unit price.
with
site_price as (
    select site_id, median(cdr_total_cost_excl_vat / cdr_energy_kwh) as unit_price, any_value(currency) as currency
    from lineage.sessions
    where cdr_energy_kwh >= 1 and cdr_total_cost_excl_vat > 0 and not cdr_is_credit
    group by site_id
),

candidates as (
    select
        s.*,
        case
            when sp.price_in_force_excl_vat is not null then sp.price_in_force_excl_vat
            when s.has_cdr and not s.cdr_is_credit and not s.cdr_is_credited then s.cdr_total_cost_excl_vat
            else s.ocpp_energy_kwh * p.unit_price
        end as price,
        case
            when sp.price_in_force_excl_vat is not null then 'recomputed from tariff in force'
            when s.has_cdr and not s.cdr_is_credit and not s.cdr_is_credited then 'cdr total'
            when p.unit_price is not null then 'ocpp energy x site median CDR unit price'
        end as price_source,
        p.currency as site_currency,
    from lineage.sessions as s
    left join site_price as p using (site_id)
    -- the session priced under the tariff in force (recon_session_prices)
    left join recon.session_prices as sp on sp.session_key = s.session_key
    where s.has_ocpp and not s.has_backend
        and s.ocpp_energy_kwh > $min_energy_kwh
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id,
    null::varchar as backend_session_id, cdr_id, null::timestamptz as interval_start,
    coalesce(price, 0) as money_at_risk,
    coalesce(currency, site_currency) as currency,
    json_object(
        'ocpp_transaction_ref', ocpp_transaction_ref, 'ocpp_started_at', ocpp_started_at,
        'ocpp_stopped_at', ocpp_stopped_at, 'ocpp_energy_kwh', round(ocpp_energy_kwh, 4),
        'backend_match', 'none', 'source', 'lineage.sessions (anchor: ocpp, no backend link)',
        'min_energy_kwh', $min_energy_kwh, 'price', round(price, 4), 'price_source', price_source
    ) as evidence,
    format(
        'Charger {} ran transaction {} ({:.3f} kWh) but the billing backend has no session for it.',
        charge_point_id, ocpp_transaction_id, ocpp_energy_kwh
    ) as explanation,
from candidates
