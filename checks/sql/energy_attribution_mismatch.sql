-- energy_attribution_mismatch: the site EMS measured a different EV energy for an interval
-- than the sessions in it add up to (recon.site_intervals, assets/attribution.py).
--
-- Interval findings (session_key null, site_id + interval_start set): |EMS - sessions| >
-- max($abs_kwh, $rel x the larger) + $even_slack x the energy placed by even proration
-- (a session without meter samples is spread evenly over start..stop, which is only
-- approximately when it drew power).
-- Session findings (interval_start null): a single session is implicated when it carries
-- at least $session_share of the session energy in $session_min_intervals or more
-- flagged intervals, all off in the same direction, and those are at least
-- $session_min_flagged_share of the intervals it dominated. One odd interval points at the
-- EMS reading; the same session off again and again points at that session's metering. Two
-- EMS glitches that happen to fall in one long session's intervals are not "again and
-- again": a session metering wrong is off in (nearly) every interval it dominates.
-- Money: |difference| x the site's median CDR unit price.
with
site_price as (
    select site_id, median(cdr_total_cost_excl_vat / cdr_energy_kwh) as unit_price, any_value(currency) as currency
    from lineage.sessions
    where cdr_energy_kwh >= 1 and cdr_total_cost_excl_vat > 0 and not cdr_is_credit
    group by site_id
),

judged as (
    select
        i.*,
        greatest($abs_kwh, $rel * greatest(abs(i.ems_ev_energy_kwh), abs(i.sessions_energy_kwh)))
            + $even_slack * i.sessions_even_kwh as tolerance_kwh,
    from recon.site_intervals as i
    where i.ems_ev_energy_kwh is not null
),

flagged as (
    select * from judged where abs(difference_kwh) > tolerance_kwh
),

interval_findings as (
    select
        null::varchar as session_key, f.site_id, f.site_type,
        null::varchar as charge_point_id, null::varchar as evse_uid, null::varchar as ocpp_transaction_id,
        null::varchar as backend_session_id, null::varchar as cdr_id,
        f.interval_start_at as interval_start,
        abs(f.difference_kwh) * coalesce(p.unit_price, 0) as money_at_risk,
        p.currency,
        json_object(
            'ems_ev_energy_kwh', round(f.ems_ev_energy_kwh, 4),
            'ems_source', 'staging.ems_intervals.ev_energy_kwh (' || f.ems_basis || ' rows)',
            'sessions_energy_kwh', round(f.sessions_energy_kwh, 4),
            'sessions_source', 'recon.session_intervals (meter values prorated by time; even where no samples)',
            'sessions_even_kwh', round(f.sessions_even_kwh, 4),
            'difference_kwh', round(f.difference_kwh, 4), 'tolerance_kwh', round(f.tolerance_kwh, 4),
            'interval_end', f.interval_end_at, 'n_sessions', f.n_sessions, 'session_keys', f.session_keys,
            'unit_price', round(p.unit_price, 4)
        ) as evidence,
        format(
            'The site meter measured {:.3f} kWh into EV chargers between {} and {} UTC, but the {} session(s) charging then add up to {:.3f} kWh ({:.3f} kWh tolerance).',
            f.ems_ev_energy_kwh, strftime(f.interval_start_at, '%Y-%m-%d %H:%M'), strftime(f.interval_end_at, '%H:%M'),
            f.n_sessions, f.sessions_energy_kwh, f.tolerance_kwh
        ) as explanation,
    from flagged as f
    left join site_price as p using (site_id)
),

-- Each session's energy per site interval (an EMS interval may span several of the
-- fixed session intervals): an as-of join, since the site intervals of a site do not overlap.
session_in_interval as (
    select
        si.session_key, j.site_id, j.interval_start_at,
        any_value(si.site_type) as site_type,
        any_value(si.charge_point_id) as charge_point_id,
        any_value(si.evse_uid) as evse_uid,
        any_value(si.ocpp_transaction_id) as ocpp_transaction_id,
        sum(si.energy_kwh) as energy_kwh,
        any_value(j.sessions_energy_kwh) as sessions_energy_kwh,
        any_value(j.difference_kwh) as difference_kwh,
        any_value(abs(j.difference_kwh) > j.tolerance_kwh) as is_flagged,
    from recon.session_intervals as si
    asof join judged as j
        on j.site_id = si.site_id and si.interval_start_at >= j.interval_start_at
    where si.interval_start_at < j.interval_end_at
    group by si.session_key, j.site_id, j.interval_start_at
),

implicated as (
    select
        session_key,
        any_value(site_id) as site_id,
        any_value(site_type) as site_type,
        any_value(charge_point_id) as charge_point_id,
        any_value(evse_uid) as evse_uid,
        any_value(ocpp_transaction_id) as ocpp_transaction_id,
        count(*) as n_dominated,
        count(*) filter (where is_flagged) as n_intervals,
        sum(difference_kwh * energy_kwh / nullif(sessions_energy_kwh, 0)) filter (where is_flagged)
            as difference_kwh,
        min(sign(difference_kwh)) filter (where is_flagged) = max(sign(difference_kwh)) filter (where is_flagged)
            as same_direction,
        list(interval_start_at order by interval_start_at) filter (where is_flagged) as intervals,
    from session_in_interval
    where energy_kwh >= $session_share * sessions_energy_kwh
    group by session_key
    having count(*) filter (where is_flagged) > 0
),

session_findings as (
    select
        i.session_key, i.site_id, i.site_type, i.charge_point_id, i.evse_uid, i.ocpp_transaction_id,
        s.backend_session_id, s.cdr_id,
        null::timestamptz as interval_start,
        abs(i.difference_kwh) * coalesce(p.unit_price, 0) as money_at_risk,
        coalesce(s.currency, p.currency) as currency,
        json_object(
            'flagged_intervals', i.intervals, 'n_flagged_intervals', i.n_intervals,
            'n_dominated_intervals', i.n_dominated, 'min_flagged_share', $session_min_flagged_share,
            'session_share_of_difference_kwh', round(i.difference_kwh, 4),
            'source', 'recon.site_intervals vs recon.session_intervals',
            'min_intervals', $session_min_intervals, 'min_session_share', $session_share
        ) as evidence,
        format(
            'In {} site meter intervals where this session drew most of the EV energy, the site meter and the session''s own readings disagree in the same direction (about {:.3f} kWh in total).',
            i.n_intervals, i.difference_kwh
        ) as explanation,
    from implicated as i
    left join lineage.sessions as s using (session_key)
    left join site_price as p on p.site_id = i.site_id
    where i.n_intervals >= $session_min_intervals and i.same_direction
        and i.n_intervals >= $session_min_flagged_share * i.n_dominated
)

select * from interval_findings
union all by name
select * from session_findings
