-- duplicate_cdr: more than one live CDR bills one session. Live = neither a credit nor
-- cancelled by one, so a credit plus its corrected re-issue is not a duplicate. The
-- earliest issued live CDR (last_updated, then id) is the original; every later one is a
-- finding of its own (cdr_id = the duplicate). Money: the duplicate's total cost.
with
members as (
    select session_key, cdr_ref, unnest(cdr_ids) as member_id
    from lineage.sessions
    where n_live_cdrs > 1
),

live as (
    select
        m.session_key, c.cdr_id, c.total_cost_excl_vat, c.total_energy_kwh, c.currency, c.last_updated_at,
        row_number() over (partition by m.session_key order by c.last_updated_at nulls last, c.start_at, c.cdr_id)
            as issue_no,
        list(c.cdr_id) over (partition by m.session_key) as live_cdr_ids,
    from members as m
    inner join lineage.match_cdrs as c
        on c.cdr_ref = split_part(m.cdr_ref, ':', 1) || ':' || split_part(m.cdr_ref, ':', 2) || ':' || m.member_id
    where c.is_live
)

select
    s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
    s.backend_session_id, l.cdr_id, null::timestamptz as interval_start,
    coalesce(l.total_cost_excl_vat, 0) as money_at_risk,
    coalesce(l.currency, s.currency) as currency,
    json_object(
        'duplicate_cdr_id', l.cdr_id, 'original_cdr_id', o.cdr_id, 'live_cdr_ids', l.live_cdr_ids,
        'duplicate_total_cost_excl_vat', l.total_cost_excl_vat, 'original_total_cost_excl_vat', o.total_cost_excl_vat,
        'duplicate_energy_kwh', l.total_energy_kwh, 'original_energy_kwh', o.total_energy_kwh,
        'source', 'lineage.sessions.cdr_ids + lineage.match_cdrs.is_live'
    ) as evidence,
    format(
        'CDR {} bills this session a second time ({} {}); CDR {} already bills it and neither was credited.',
        l.cdr_id, coalesce(printf('%.2f', l.total_cost_excl_vat), '?'), coalesce(l.currency, s.currency, ''), o.cdr_id
    ) as explanation,
from live as l
inner join live as o on o.session_key = l.session_key and o.issue_no = 1
inner join lineage.sessions as s on s.session_key = l.session_key
where l.issue_no > 1
