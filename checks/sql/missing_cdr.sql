-- missing_cdr: a completed, billable session that no CDR bills.
-- Completed: an OCPP stop or a backend stopped_at. Billable: the backend knows it (the
-- backend issues CDRs; a session it never saw is missing_backend_session, not this), more
-- than $min_energy_kwh delivered, the backend status is not one of $non_billable_statuses
-- and the backend amount, when exported, is not 0 (a free session). A session whose
-- only CDR was credited has a CDR (cancelled on purpose) and is not flagged.
-- Money: the price recomputed from the tariff in force, else the backend amount, else
-- energy x the site's median CDR unit price.
with
site_price as (
    select site_id, median(cdr_total_cost_excl_vat / cdr_energy_kwh) as unit_price, any_value(currency) as currency
    from lineage.sessions
    -- A credited CDR was withdrawn, often for a wrong price: only live CDRs set the unit price.
    where cdr_energy_kwh >= 1 and cdr_total_cost_excl_vat > 0 and not cdr_is_credit and not cdr_is_credited
    group by site_id
),

candidates as (
    select
        s.*,
        coalesce(s.backend_energy_kwh, s.ocpp_energy_kwh) as energy_kwh,
        case
            when sp.price_in_force_excl_vat is not null then sp.price_in_force_excl_vat
            when s.backend_amount is not null then s.backend_amount
            else coalesce(s.backend_energy_kwh, s.ocpp_energy_kwh) * p.unit_price
        end as price,
        case
            when sp.price_in_force_excl_vat is not null then 'recomputed from tariff in force'
            when s.backend_amount is not null then 'backend amount'
            when p.unit_price is not null then 'energy x site median CDR unit price'
        end as price_source,
        p.unit_price,
        p.currency as site_currency,
    from lineage.sessions as s
    left join site_price as p using (site_id)
    -- the session priced under the tariff in force (recon_session_prices)
    left join recon.session_prices as sp on sp.session_key = s.session_key
    where not s.has_cdr and len(coalesce(s.cdr_ids, [])) = 0
        and s.has_backend
        and (s.ocpp_stopped_at is not null or s.backend_stopped_at is not null)
        and coalesce(s.backend_energy_kwh, s.ocpp_energy_kwh) > $min_energy_kwh
        and not list_contains($non_billable_statuses, lower(coalesce(s.backend_status, '')))
        and coalesce(s.backend_amount, 1) <> 0
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id, backend_session_id,
    null::varchar as cdr_id, null::timestamptz as interval_start,
    coalesce(price, 0) as money_at_risk,
    coalesce(currency, site_currency) as currency,
    json_object(
        'energy_kwh', round(energy_kwh, 4), 'energy_source', case when backend_energy_kwh is not null then 'backend' else 'ocpp' end,
        'ocpp_stopped_at', ocpp_stopped_at, 'backend_stopped_at', backend_stopped_at,
        'backend_status', backend_status, 'backend_amount', backend_amount,
        'cdr_source', 'staging.cdrs (none linked)', 'min_energy_kwh', $min_energy_kwh,
        'price', round(price, 4), 'price_source', price_source
    ) as evidence,
    format(
        'The session ended and delivered {:.3f} kWh, but no CDR was issued for it, so it was never billed (about {} {}).',
        energy_kwh, coalesce(printf('%.2f', price), 'unknown'), coalesce(currency, site_currency, '')
    ) as explanation,
from candidates
