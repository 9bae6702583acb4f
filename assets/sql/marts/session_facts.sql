-- One row per session of lineage.sessions with the few facts the marts, the review report
-- and analysts aggregate. Grain: session_key.
-- energy_kwh is what was billed: the CDR's, else the backend's, else the charger's.
-- start_drift_s = charger (OCPP) start minus backend start, seconds (negative = behind).
-- n_sources = how many of OCPP, backend and CDR know the session.
-- Token UIDs only as their keyed hash (pipeline.privacy). lineage.sessions is unique by
-- session_key (its own check); should it not be, assets/marts.py keeps one row per key.
select
    ls.session_key,
    ls.site_id,
    coalesce(ls.site_type, st.site_type) as site_type,
    ls.charge_point_id,
    ls.connector_id,
    ls.evse_uid,
    ls.ocpp_transaction_id,
    ls.backend_session_id,
    ls.ocpi_session_id,
    ls.cdr_id,
    ls.started_at,
    ls.stopped_at,
    cast(timezone('UTC', ls.started_at) as date) as session_day,
    coalesce(ls.cdr_energy_kwh, ls.backend_energy_kwh, ls.ocpp_energy_kwh) as energy_kwh,
    ls.ocpp_energy_kwh,
    ls.backend_energy_kwh,
    ls.cdr_energy_kwh,
    ls.cdr_total_cost_excl_vat as revenue_excl_vat,
    sp.price_in_force_excl_vat as recomputed_cost_excl_vat,
    ls.currency,
    ls.ocpp_started_at,
    ls.backend_started_at,
    epoch(ls.ocpp_started_at) - epoch(ls.backend_started_at) as start_drift_s,
    coalesce(ls.has_ocpp, false)::integer
    + coalesce(ls.has_backend, false)::integer
    + coalesce(ls.has_cdr, false)::integer as n_sources,
    ls.token_hash,
from lineage.sessions as ls
left join staging.sites as st on st.site_id = ls.site_id
-- the cost recomputed under the tariff in force (recon_session_prices; one row per session)
left join recon.session_prices as sp on sp.session_key = ls.session_key
