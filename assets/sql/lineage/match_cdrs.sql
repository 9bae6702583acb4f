-- lineage.match_cdrs: one row per CDR (`<country>:<party>:<cdr_id>`), with the OCPP
-- charger and connector its EVSE maps to in the registry.
with cdr as (
    select
        coalesce(c.country_code, '') || ':' || coalesce(c.party_id, '') || ':' || c.cdr_id as cdr_ref,
        c.cdr_id,
        c.country_code,
        c.party_id,
        c.start_at,
        c.end_at,
        nullif(c.ocpi_session_id, '') as ocpi_session_id,
        c.token_uid_hash,
        c.location_id,
        c.evse_uid,
        c.evse_id,
        cast(c.connector_id as varchar) as cdr_connector_id,
        c.currency,
        c.tariff_ids[1] as tariff_id,
        c.total_cost_excl_vat,
        c.total_cost_incl_vat,
        c.total_energy_kwh,
        coalesce(c.credit, false) as is_credit,
        case
            when c.credit_reference_id is not null
                then coalesce(c.country_code, '') || ':' || coalesce(c.party_id, '') || ':' || c.credit_reference_id
        end as credit_reference_ref,
        c.last_updated_at,
    from staging.cdrs as c
    where c.cdr_id is not null
    -- The same CDR sent again (an update) is one record: keep its latest version.
    qualify row_number() over (
        partition by cdr_ref order by c.last_updated_at desc nulls last, c.source_file desc, c.record_no desc
    ) = 1
),

registry as (
    select
        e.charge_point_id,
        try_cast(e.connector_id as integer) as connector_id,
        e.location_id,
        e.evse_uid,
        e.evse_id,
    from staging.evses as e
),

-- An OCPI EVSE can hold several connectors: the CDR's connector and location pick among them.
resolved as (
    select
        m.cdr_ref,
        m.charge_point_id,
        m.connector_id,
    from (
        -- Two equi-joins, not one OR join: an OR condition makes DuckDB loop over pairs.
        select c.cdr_ref, c.location_id as cdr_location_id, c.cdr_connector_id, r.charge_point_id, r.connector_id, r.location_id
        from cdr as c
        inner join registry as r on r.evse_uid = c.evse_uid
        union all
        select c.cdr_ref, c.location_id as cdr_location_id, c.cdr_connector_id, r.charge_point_id, r.connector_id, r.location_id
        from cdr as c
        inner join registry as r on r.evse_id = c.evse_id
        where c.evse_uid is null
    ) as m
    qualify row_number() over (
        partition by m.cdr_ref
        order by
            coalesce(m.location_id = m.cdr_location_id, false) desc,
            coalesce(cast(m.connector_id as varchar) = m.cdr_connector_id, false) desc,
            m.charge_point_id,
            m.connector_id
    ) = 1
),

credited as (
    select distinct credit_reference_ref as cdr_ref
    from cdr
    where is_credit and credit_reference_ref is not null
)

select
    c.*,
    rs.charge_point_id,
    rs.connector_id,
    cr.cdr_ref is not null as is_credited,
    -- Live: neither a credit nor cancelled by one; only live CDRs count as duplicates.
    not c.is_credit and cr.cdr_ref is null as is_live,
    c.start_at as match_at,
from cdr as c
left join resolved as rs on rs.cdr_ref = c.cdr_ref
left join credited as cr on cr.cdr_ref = c.cdr_ref
