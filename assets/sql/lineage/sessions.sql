-- lineage.sessions: one row per charging session the pipeline knows of, from any source
-- (contract §3). Sessions come from lineage.links; records that link to nothing are
-- sessions of their own. The anchor is the OCPP transaction, else the backend session,
-- else the CDR, and session_key is a hash of its identity (pipeline.lineage.keys).
with ob as (
    select left_id as ocpp_ref, right_id as backend_session_id, rule, confidence
    from lineage.links
    where left_kind = 'ocpp' and right_kind = 'backend'
),

sc as (
    select left_kind, left_id, right_id as cdr_ref, rule, confidence
    from lineage.links
    where right_kind = 'cdr' and left_kind in ('ocpp', 'backend')
),

dup as (
    select left_id as primary_ref, right_id as cdr_ref
    from lineage.links
    where rule = 'duplicate_of'
),

credit as (
    select left_id as credit_ref, right_id as original_ref
    from lineage.links
    where rule = 'credit_of'
),

ocpp_backend as (
    select
        o.ocpp_ref,
        ob.backend_session_id,
        ob.rule as backend_link_rule,
        ob.confidence as backend_link_confidence,
    from lineage.match_ocpp as o
    left join ob on ob.ocpp_ref = o.ocpp_ref
    union all
    select
        null as ocpp_ref,
        b.session_id as backend_session_id,
        null as backend_link_rule,
        null as backend_link_confidence,
    from lineage.match_backend as b
    where b.session_id not in (select backend_session_id from ob)
),

with_cdr as (
    select
        x.*,
        coalesce(scb.cdr_ref, sco.cdr_ref) as cdr_ref,
        coalesce(scb.rule, sco.rule) as cdr_link_rule,
        coalesce(scb.confidence, sco.confidence) as cdr_link_confidence,
        case when scb.cdr_ref is not null then 'backend' when sco.cdr_ref is not null then 'ocpp' end as cdr_link_via,
    from ocpp_backend as x
    left join sc as scb on scb.left_kind = 'backend' and scb.left_id = x.backend_session_id
    left join sc as sco on sco.left_kind = 'ocpp' and sco.left_id = x.ocpp_ref
),

-- CDRs attached to another CDR (duplicates, and credits whose original is known).
attached as (
    select cdr_ref from dup
    union
    select credit_ref as cdr_ref from credit
),

all_sessions as (
    select * from with_cdr
    union all
    select
        null as ocpp_ref,
        null as backend_session_id,
        null as backend_link_rule,
        null as backend_link_confidence,
        c.cdr_ref,
        null as cdr_link_rule,
        null as cdr_link_confidence,
        null as cdr_link_via,
    from lineage.match_cdrs as c
    where c.cdr_ref not in (select cdr_ref from sc)
        and c.cdr_ref not in (select cdr_ref from attached)
),

-- Every CDR of a session: the primary one, its duplicates, and the credits of either.
members as (
    select cdr_ref as primary_ref, cdr_ref as member_ref, 0 as member_tier
    from all_sessions
    where cdr_ref is not null
    union all
    select primary_ref, cdr_ref as member_ref, 1 as member_tier
    from dup
),

member_cdrs as (
    select m.primary_ref, m.member_tier, c.*
    from members as m
    inner join lineage.match_cdrs as c on c.cdr_ref = m.member_ref
    union all
    select m.primary_ref, 2 as member_tier, c.*
    from credit as k
    inner join members as m on m.member_ref = k.original_ref
    inner join lineage.match_cdrs as c on c.cdr_ref = k.credit_ref
),

cdr_sets as (
    select
        primary_ref,
        list(cdr_id order by member_tier, start_at, cdr_id) filter (where member_tier < 2) as cdr_ids,
        count(*) filter (where member_tier < 2) as n_cdrs,
        count(*) filter (where member_tier < 2 and is_live) as n_live_cdrs,
        list(cdr_id order by last_updated_at, cdr_id) filter (where member_tier = 2) as credit_cdr_ids,
    from member_cdrs
    group by primary_ref
),

registry as (
    select
        charge_point_id,
        try_cast(connector_id as integer) as connector_id,
        site_id,
        location_id,
        evse_uid,
        evse_id,
    from staging.evses
    qualify row_number() over (partition by charge_point_id, try_cast(connector_id as integer) order by evse_uid) = 1
),

tariff_versions as (
    select
        country_code,
        party_id,
        tariff_id,
        version_id,
        last_updated_at,
        valid_from_at,
        valid_to_at,
    from staging.tariff_versions
),

joined as (
    select
        s.*,
        o.charge_point_id as ocpp_charge_point_id,
        o.connector_id as ocpp_connector_id,
        o.transaction_id as ocpp_transaction_id,
        o.started_at as ocpp_started_at,
        o.stopped_at as ocpp_stopped_at,
        o.energy_kwh as ocpp_energy_kwh,
        o.token_hash as ocpp_token_hash,
        b.charge_point_id as backend_charge_point_id,
        b.connector_id as backend_connector_id,
        b.started_at as backend_started_at,
        b.stopped_at as backend_stopped_at,
        b.energy_kwh as backend_energy_kwh,
        b.token_hash as backend_token_hash,
        b.ocpi_session_id as backend_ocpi_session_id,
        b.status as backend_status,
        b.amount as backend_amount,
        b.currency as backend_currency,
        c.cdr_id,
        c.country_code as cdr_country_code,
        c.party_id as cdr_party_id,
        c.ocpi_session_id as cdr_ocpi_session_id,
        c.charge_point_id as cdr_charge_point_id,
        c.connector_id as cdr_connector_id,
        c.evse_uid as cdr_evse_uid,
        c.start_at as cdr_started_at,
        c.end_at as cdr_stopped_at,
        c.total_energy_kwh as cdr_energy_kwh,
        c.currency as cdr_currency,
        c.total_cost_excl_vat as cdr_total_cost_excl_vat,
        c.total_cost_incl_vat as cdr_total_cost_incl_vat,
        c.tariff_id as cdr_tariff_id,
        c.is_credit as cdr_is_credit,
        c.is_credited as cdr_is_credited,
        c.token_uid_hash as cdr_token_uid_hash,
        cs.cdr_ids,
        coalesce(cs.n_cdrs, 0) as n_cdrs,
        coalesce(cs.n_live_cdrs, 0) as n_live_cdrs,
        coalesce(cs.credit_cdr_ids, []) as credit_cdr_ids,
        case
            when s.ocpp_ref is not null then 'ocpp:' || s.ocpp_ref
            when s.backend_session_id is not null then 'backend:' || s.backend_session_id
            else 'cdr:' || s.cdr_ref
        end as anchor,
    from all_sessions as s
    left join lineage.match_ocpp as o on o.ocpp_ref = s.ocpp_ref
    left join lineage.match_backend as b on b.session_id = s.backend_session_id
    left join lineage.match_cdrs as c on c.cdr_ref = s.cdr_ref
    left join cdr_sets as cs on cs.primary_ref = s.cdr_ref
),

placed as (
    select
        j.*,
        coalesce(j.ocpp_charge_point_id, j.backend_charge_point_id, j.cdr_charge_point_id) as charge_point_id,
        coalesce(j.ocpp_connector_id, j.backend_connector_id, j.cdr_connector_id) as connector_id,
        -- OCPI prices from the start the CDR states; without a CDR the backend, then the charger.
        coalesce(j.cdr_started_at, j.backend_started_at, j.ocpp_started_at) as started_at,
        coalesce(j.cdr_stopped_at, j.backend_stopped_at, j.ocpp_stopped_at) as stopped_at,
    from joined as j
),

in_force as (
    select
        p.anchor,
        t.tariff_id,
        t.version_id,
        t.last_updated_at,
        t.valid_from_at,
    from placed as p
    inner join tariff_versions as t
        on t.tariff_id = p.cdr_tariff_id
        -- macro of pipeline.tariffs.history (IN_FORCE_MACRO)
        and tariff_in_force(t.valid_from_at, t.valid_to_at, p.started_at)
    qualify row_number() over (
        partition by p.anchor
        order by
            (t.country_code is not distinct from p.cdr_country_code
                and t.party_id is not distinct from p.cdr_party_id) desc,
            t.valid_from_at desc,
            t.last_updated_at desc
    ) = 1
)

select
    substr(sha256(p.anchor), 1, 20) as session_key,
    split_part(p.anchor, ':', 1) as anchor_kind,
    p.anchor,
    e.site_id,
    st.site_type,
    p.charge_point_id,
    p.connector_id,
    coalesce(e.evse_uid, p.cdr_evse_uid) as evse_uid,
    e.evse_id,
    e.location_id,
    p.ocpp_transaction_id,
    p.ocpp_ref as ocpp_transaction_ref,
    p.backend_session_id,
    coalesce(p.cdr_ocpi_session_id, p.backend_ocpi_session_id) as ocpi_session_id,
    p.cdr_id,
    p.cdr_ref,
    p.cdr_country_code,
    p.cdr_party_id,
    p.backend_link_rule,
    p.backend_link_confidence,
    p.cdr_link_rule,
    p.cdr_link_confidence,
    p.cdr_link_via,
    p.started_at,
    p.stopped_at,
    p.ocpp_started_at,
    p.ocpp_stopped_at,
    p.ocpp_energy_kwh,
    p.backend_started_at,
    p.backend_stopped_at,
    p.backend_energy_kwh,
    p.cdr_started_at,
    p.cdr_stopped_at,
    p.cdr_energy_kwh,
    coalesce(p.ocpp_token_hash, p.backend_token_hash, p.cdr_token_uid_hash) as token_hash,
    p.backend_status,
    p.backend_amount,
    p.backend_currency,
    coalesce(p.cdr_currency, p.backend_currency) as currency,
    p.cdr_total_cost_excl_vat,
    p.cdr_total_cost_incl_vat,
    p.cdr_tariff_id,
    -- the version id of staging.tariff_versions (pipeline.tariffs.history.version_id)
    f.version_id as tariff_version_in_force,
    f.tariff_id as tariff_in_force_id,
    f.valid_from_at as tariff_in_force_valid_from_at,
    f.last_updated_at as tariff_in_force_last_updated_at,
    -- The cost recomputed under the version in force is recon.session_prices
    -- (price_in_force_excl_vat, by session_key): pricing reads this table, and an asset
    -- writes only its own table.
    coalesce(p.cdr_ids, []) as cdr_ids,
    p.n_cdrs,
    p.n_live_cdrs,
    p.credit_cdr_ids,
    coalesce(p.cdr_is_credit, false) as cdr_is_credit,
    coalesce(p.cdr_is_credited, false) as cdr_is_credited,
    p.ocpp_ref is not null as has_ocpp,
    p.backend_session_id is not null as has_backend,
    p.cdr_ref is not null as has_cdr,
from placed as p
left join registry as e
    on e.charge_point_id = p.charge_point_id
    and e.connector_id = p.connector_id
left join staging.sites as st on st.site_id = e.site_id
left join in_force as f on f.anchor = p.anchor
