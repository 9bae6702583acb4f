-- Sessions the pricing step must price (assets/pricing.py), one row each, with everything it
-- needs so that Python touches each session once: sessions with a live CDR (cost and tariff
-- checks) and completed OCPP sessions without one (money at risk of missing_cdr).
-- The version in force at start and any version coming into force before stop are resolved
-- here, set-based; Python only decides which version the CDR itself used and prices.
with cdr as (
    select *
    from staging.cdrs
    where not coalesce(credit, false)
    qualify row_number() over (
        partition by country_code, party_id, cdr_id order by last_updated_at desc nulls last, record_no desc
    ) = 1
),

sessions as (
    select
        ls.session_key, ls.site_id, ls.evse_uid, ls.charge_point_id, ls.ocpp_transaction_id, ls.cdr_id,
        c.country_code, c.party_id, c.location_id as cdr_location_id,
        coalesce(ls.currency, c.currency) as currency,
        coalesce(ls.cdr_total_cost_excl_vat, c.total_cost_excl_vat) as cdr_total_cost_excl_vat,
        coalesce(ls.cdr_tariff_id, c.tariff_ids[1]) as cdr_tariff_id,
        c.cdr_json::varchar as cdr_json,
        c.last_updated_at as cdr_last_updated_at,
        coalesce(ls.cdr_started_at, c.start_at, ls.backend_started_at, ls.ocpp_started_at) as started_at,
        coalesce(ls.cdr_stopped_at, c.end_at, ls.backend_stopped_at, ls.ocpp_stopped_at) as stopped_at,
        ls.ocpp_started_at,
        ls.ocpp_stopped_at,
        c.cdr_id is not null as has_cdr
    from lineage.sessions as ls
    left join cdr as c
        on c.cdr_id = ls.cdr_id
        and (ls.cdr_country_code is null or c.country_code = ls.cdr_country_code)
        and (ls.cdr_party_id is null or c.party_id = ls.cdr_party_id)
    where c.cdr_id is not null
        or (
            ls.cdr_id is null and ls.ocpp_transaction_id is not null
            and coalesce(ls.ocpp_stopped_at, ls.backend_stopped_at) is not null
            and coalesce(ls.ocpp_energy_kwh, ls.backend_energy_kwh, 0) > 0
        )
),

-- Tariff of a session without a CDR (or a CDR naming none): the one most CDRs at the same
-- EVSE, else the same location, were priced with; else the only tariff there is.
evse_tariff as (
    select evse_uid, tariff_ids[1] as tariff_id
    from cdr
    where tariff_ids[1] is not null
    group by evse_uid, tariff_ids[1]
    qualify row_number() over (partition by evse_uid order by count(*) desc, tariff_id) = 1
),

location_tariff as (
    select location_id, tariff_ids[1] as tariff_id
    from cdr
    where tariff_ids[1] is not null
    group by location_id, tariff_ids[1]
    qualify row_number() over (partition by location_id order by count(*) desc, tariff_id) = 1
),

only_tariff as (
    select min(tariff_id) as tariff_id from staging.tariff_versions having count(distinct tariff_id) = 1
),

resolved as (
    select
        s.*,
        coalesce(s.cdr_tariff_id, et.tariff_id, lt.tariff_id, (select ot.tariff_id from only_tariff as ot)) as tariff_id,
        coalesce(st.time_zone, 'UTC') as time_zone
    from sessions as s
    left join staging.evses as ev
        on ev.evse_uid = s.evse_uid and ev.charge_point_id = s.charge_point_id
    left join evse_tariff as et on et.evse_uid = s.evse_uid
    left join location_tariff as lt on lt.location_id = coalesce(s.cdr_location_id, ev.location_id)
    left join staging.sites as st on st.site_id = s.site_id
),

versions as (
    select
        country_code, party_id, tariff_id, last_updated_at, valid_from_at, valid_to_at,
        concat_ws(':', country_code, party_id, tariff_id) || '@'
            || coalesce(strftime(last_updated_at, '%Y-%m-%dT%H:%M:%SZ'), '')
            as version_id
    from staging.tariff_versions
),

in_force as (
    select r.session_key, v.version_id, v.last_updated_at, v.valid_from_at
    from resolved as r
    inner join versions as v
        on v.tariff_id = r.tariff_id
        and (r.country_code is null or v.country_code is null or v.country_code = r.country_code)
        and (r.party_id is null or v.party_id is null or v.party_id = r.party_id)
        and v.valid_from_at <= r.started_at
        and (v.valid_to_at is null or r.started_at < v.valid_to_at)
    qualify row_number() over (
        partition by r.session_key order by v.valid_from_at desc, v.last_updated_at desc
    ) = 1
),

next_version as (
    select r.session_key, v.version_id, v.valid_from_at
    from resolved as r
    inner join versions as v
        on v.tariff_id = r.tariff_id
        and (r.country_code is null or v.country_code is null or v.country_code = r.country_code)
        and (r.party_id is null or v.party_id is null or v.party_id = r.party_id)
        and v.valid_from_at > r.started_at
        and v.valid_from_at <= r.stopped_at
    qualify row_number() over (
        partition by r.session_key order by v.valid_from_at, v.last_updated_at desc
    ) = 1
)

select
    r.*,
    f.version_id as in_force_version_id,
    f.valid_from_at as in_force_valid_from_at,
    n.version_id as next_version_id,
    n.valid_from_at as next_valid_from_at
from resolved as r
left join in_force as f using (session_key)
left join next_version as n using (session_key)
