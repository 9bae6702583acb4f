-- lineage.links: every accepted link between two records, with its rule and confidence.
-- OCPP <-> backend and session <-> CDR come from the one-to-one assignment (pipeline.lineage);
-- duplicate CDRs (a second live CDR of an already linked session) and credit CDRs are
-- attached here to the CDR whose session they belong to, so they stay visible without
-- taking that session's slot.
with ob as (
    select
        'ocpp' as left_kind,
        left_id,
        'backend' as right_kind,
        right_id,
        rule,
        confidence,
        score_detail,
    from lineage.link_ocpp_backend
),

sc as (
    select
        s.left_kind,
        s.left_id,
        'cdr' as right_kind,
        l.right_id,
        l.rule,
        l.confidence,
        l.score_detail,
    from lineage.link_session_cdr as l
    inner join lineage.stage_sessions as s on s.session_ref = l.left_id
),

primary_cdr as (
    select
        l.left_id as session_ref,
        c.*,
    from lineage.link_session_cdr as l
    inner join lineage.match_cdrs as c on c.cdr_ref = l.right_id
),

loose as (
    select c.*
    from lineage.match_cdrs as c
    where not c.is_credit
        and c.cdr_ref not in (select right_id from lineage.link_session_cdr)
),

dup_candidates as (
    -- Same OCPI session id as the primary CDR of the same party.
    select
        p.cdr_ref as primary_ref,
        l.cdr_ref as dup_ref,
        'ocpi_session_id' as evidence,
        0 as tier,
        abs(epoch(l.start_at) - epoch(p.start_at)) as start_diff_s,
    from loose as l
    inner join primary_cdr as p
        on p.ocpi_session_id = l.ocpi_session_id
        and p.country_code is not distinct from l.country_code
        and p.party_id is not distinct from l.party_id
    union all
    -- The backend row names it (by CDR id or OCPI session id) but the slot was taken.
    select
        p.cdr_ref as primary_ref,
        l.cdr_ref as dup_ref,
        k.exact_rule as evidence,
        1 as tier,
        k.start_diff_s,
    from lineage.candidates_session_cdr as k
    inner join loose as l on l.cdr_ref = k.right_id
    inner join primary_cdr as p on p.session_ref = k.left_id
    where k.exact_rule is not null
    union all
    -- Same EVSE, same start and stop within $duplicate_tolerance_s, same energy.
    select
        p.cdr_ref as primary_ref,
        l.cdr_ref as dup_ref,
        'evse_time_energy' as evidence,
        2 as tier,
        abs(epoch(l.start_at) - epoch(p.start_at)) as start_diff_s,
    from loose as l
    inner join primary_cdr as p
        on p.charge_point_id = l.charge_point_id
        and p.connector_id = l.connector_id
    where abs(epoch(l.start_at) - epoch(p.start_at)) <= $duplicate_tolerance_s
        and abs(epoch(l.end_at) - epoch(p.end_at)) <= $duplicate_tolerance_s
        and abs(l.total_energy_kwh - p.total_energy_kwh)
        <= greatest(0.01 * greatest(abs(l.total_energy_kwh), abs(p.total_energy_kwh)), 0.01)
),

dups as (
    select
        'cdr' as left_kind,
        primary_ref as left_id,
        'cdr' as right_kind,
        dup_ref as right_id,
        'duplicate_of' as rule,
        case when tier < 2 then 1.0 else 0.9 end as confidence,
        json_object('evidence', evidence, 'start_diff_s', start_diff_s)::varchar as score_detail,
    from dup_candidates
    qualify row_number() over (partition by dup_ref order by tier, start_diff_s nulls last, primary_ref) = 1
),

credits as (
    select
        'cdr' as left_kind,
        cr.cdr_ref as left_id,
        'cdr' as right_kind,
        o.cdr_ref as right_id,
        'credit_of' as rule,
        1.0 as confidence,
        json_object('credit_reference_id', cr.credit_reference_ref)::varchar as score_detail,
    from lineage.match_cdrs as cr
    inner join lineage.match_cdrs as o on o.cdr_ref = cr.credit_reference_ref
    where cr.is_credit and not o.is_credit
)

select
    left_kind,
    left_id,
    right_kind,
    right_id,
    rule,
    cast(confidence as double) as confidence,
    cast(score_detail as json) as score_detail,
from (
    select * from ob
    union all select * from sc
    union all select * from dups
    union all select * from credits
) as u
