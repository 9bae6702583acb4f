-- Sessions the pricing step must price (assets/pricing.py), one row each, with everything it
-- needs so that Python touches each session once: sessions with a live CDR (cost and tariff
-- checks) and completed OCPP sessions without one (money at risk of missing_cdr).
-- The version in force at start and any version coming into force before stop are resolved
-- here, set-based; Python only decides which version the CDR itself used and prices.
with cdr_all as (
    select *
    from staging.cdrs
    where cdr_id is not null
    qualify row_number() over (
        partition by country_code, party_id, cdr_id order by last_updated_at desc nulls last, record_no desc
    ) = 1
),

credited as (
    select distinct country_code, party_id, credit_reference_id as cdr_id
    from cdr_all
    where coalesce(credit, false) and credit_reference_id is not null
),

-- Live: neither a credit nor cancelled by one (OCPI 2.2.1 "Credit CDRs"). Only a live CDR
-- bills, so only a live CDR is priced and compared.
cdr as (
    select a.*
    from cdr_all as a
    where not coalesce(a.credit, false)
        and not exists (
            select 1 from credited as k
            where k.cdr_id = a.cdr_id
                and k.country_code is not distinct from a.country_code
                and k.party_id is not distinct from a.party_id
        )
),

-- The CDR that bills a session: lineage may have given the session slot to a credited
-- original, whose re-issue is then a member of cdr_ids. The latest issued live member wins.
session_cdr as (
    select ls.session_key, c.cdr_id, c.country_code, c.party_id
    from lineage.sessions as ls
    cross join unnest(coalesce(nullif(ls.cdr_ids, []), [ls.cdr_id])) as u(member_id)
    inner join cdr as c on c.cdr_id = u.member_id
    where ls.cdr_id is not null
    qualify row_number() over (
        partition by ls.session_key
        order by (c.country_code is not distinct from ls.cdr_country_code
                  and c.party_id is not distinct from ls.cdr_party_id) desc,
            c.last_updated_at desc nulls last, c.cdr_id desc
    ) = 1
),

sessions as (
    select
        ls.session_key, ls.site_id, ls.evse_uid, ls.charge_point_id, ls.ocpp_transaction_id,
        c.cdr_id,
        c.country_code, c.party_id, c.location_id as cdr_location_id,
        coalesce(c.currency, ls.currency) as currency,
        case when c.cdr_id is not null then c.total_cost_excl_vat end as cdr_total_cost_excl_vat,
        coalesce(c.tariff_ids[1], ls.cdr_tariff_id) as cdr_tariff_id,
        c.cdr_json::varchar as cdr_json,
        c.last_updated_at as cdr_last_updated_at,
        coalesce(c.start_at, ls.cdr_started_at, ls.backend_started_at, ls.ocpp_started_at) as started_at,
        coalesce(c.end_at, ls.cdr_stopped_at, ls.backend_stopped_at, ls.ocpp_stopped_at) as stopped_at,
        ls.ocpp_started_at,
        ls.ocpp_stopped_at,
        c.cdr_id is not null as has_cdr
    from lineage.sessions as ls
    left join session_cdr as sc on sc.session_key = ls.session_key
    left join cdr as c
        on c.cdr_id = sc.cdr_id
        and c.country_code is not distinct from sc.country_code
        and c.party_id is not distinct from sc.party_id
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
    select country_code, party_id, tariff_id, last_updated_at, valid_from_at, valid_to_at, version_id
    from staging.tariff_versions
),

in_force as (
    select r.session_key, v.version_id, v.last_updated_at, v.valid_from_at
    from resolved as r
    inner join versions as v
        on v.tariff_id = r.tariff_id
        and (r.country_code is null or v.country_code is null or v.country_code = r.country_code)
        and (r.party_id is null or v.party_id is null or v.party_id = r.party_id)
        -- macro of pipeline.tariffs.history (IN_FORCE_MACRO)
        and tariff_in_force(v.valid_from_at, v.valid_to_at, r.started_at)
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
