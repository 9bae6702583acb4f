-- energy_attribution_mismatch: the site EMS measured an EV energy for an interval that no
-- distribution of the sessions' energies explains (recon.attribution_judgement,
-- assets/attribution.py, pipeline/attribution.py).
--
-- Interval findings (session_key null, site_id + interval_start set):
--   outside_band: the EMS value lies outside [sessions least - tolerance, sessions most +
--     conversion loss x most of DC sessions + standby + tolerance]: what the sessions in it can have drawn at
--     their power limits, within the samples' gaps (recon.session_intervals). A session with
--     no samples can have drawn anywhere in its window, so hours of idle plugged-in time
--     never show here.
--   joint: every interval on its own is possible, but the sessions' energies cannot be laid
--     out so that all of a site's intervals match at once (a max-flow feasibility test). One
--     finding per irreducible conflicting set, at its interval farthest from the point
--     estimate (in its own tolerances) in the conflict's direction, naming all intervals and sessions of the set.
-- Session findings (interval_start null): a single session is implicated when it carries
-- at least $session_share of the point estimate in $session_min_intervals or more
-- outside-band intervals, all off in the same direction, and those are at least
-- $session_min_flagged_share of the intervals it dominated. One odd interval points at the
-- EMS reading; the same session off again and again points at that session's metering.
-- Money: the energy outside the band (or that cannot be placed) x the site's median CDR unit
-- price that day (a day's own sessions, so the figure does not depend on which other days a
-- run reconciles), else over every session the run sees.
with
site_day_price as (
    select site_id, cast(cdr_started_at as date) as day,
        median(cdr_total_cost_excl_vat / cdr_energy_kwh) as unit_price, any_value(currency) as currency
    from lineage.sessions
    where cdr_energy_kwh >= 1 and cdr_total_cost_excl_vat > 0 and not cdr_is_credit
    group by all
),

site_price as (
    select site_id, median(cdr_total_cost_excl_vat / cdr_energy_kwh) as unit_price, any_value(currency) as currency
    from lineage.sessions
    where cdr_energy_kwh >= 1 and cdr_total_cost_excl_vat > 0 and not cdr_is_credit
    group by site_id
),

judged as (
    select j.*, coalesce(pd.unit_price, p.unit_price) as unit_price, coalesce(pd.currency, p.currency) as price_currency
    from recon.attribution_judgement as j
    left join site_day_price as pd on pd.site_id = j.site_id and pd.day = cast(j.interval_start_at as date)
    left join site_price as p on p.site_id = j.site_id
),

-- Each session's share per site interval (an EMS interval may span several of the fixed
-- session intervals): an as-of join, since the site intervals of a site do not overlap.
session_in_interval as (
    select
        si.session_key, j.site_id, j.interval_start_at,
        any_value(si.site_type) as site_type,
        any_value(si.charge_point_id) as charge_point_id,
        any_value(si.evse_uid) as evse_uid,
        any_value(si.ocpp_transaction_id) as ocpp_transaction_id,
        sum(si.energy_kwh) as energy_kwh,
        sum(si.least_kwh) as least_kwh,
        sum(si.most_kwh) as most_kwh,
        any_value(si.basis) as basis,
        any_value(si.n_samples) as n_samples,
        any_value(si.n_broken_steps) as n_broken_steps,
        any_value(si.power_limit_kw) as power_limit_kw,
        any_value(si.power_limit_source) as power_limit_source,
        any_value(si.cap_kw) as cap_kw,
        any_value(si.window_start_at) as window_start_at,
        any_value(si.window_end_at) as window_end_at,
        any_value(si.stop_missing) as stop_missing,
        any_value(si.session_energy_kwh) as session_energy_kwh,
        any_value(j.sessions_energy_kwh) as sessions_energy_kwh,
        any_value(j.ems_ev_energy_kwh - j.sessions_energy_kwh) as difference_kwh,
        any_value(j.outside_band) as is_flagged,
    from recon.session_intervals as si
    asof join judged as j
        on j.site_id = si.site_id and si.interval_start_at >= j.interval_start_at
    where si.interval_start_at < j.interval_end_at
    group by si.session_key, j.site_id, j.interval_start_at
),

unrecorded_stops as (
    -- A session whose stop was never recorded may have drawn after its last sign of life,
    -- until the first evidence that it ended: an interval then may follow from it even though
    -- its bounds end earlier. A charger that samples would have sent another sample had it
    -- kept drawing, so its silence is bounded by its own longest gap between samples (with
    -- three or more samples); one that never sampled, by $unrecorded_stop_h.
    select
        session_key, any_value(site_id) as site_id, any_value(window_start_at) as window_start_at,
        least(
            any_value(end_evidence_at),
            any_value(window_end_at) + case
                when any_value(n_samples) >= 3 then to_seconds(cast(any_value(max_sample_gap_s) as bigint))
                else to_minutes(cast($unrecorded_stop_h * 60 as bigint))
            end
        ) as may_end_at,
        any_value(window_end_at) as window_end_at,
        any_value(cap_kw) as cap_kw
    from recon.session_intervals
    where stop_missing
    group by session_key
),

suspects as (
    -- ... when it could have drawn the excess at its power limit in the time after its last
    -- sign of life that falls into the interval.
    select j.site_id, j.interval_start_at, list(distinct u.session_key order by u.session_key) as session_keys
    from judged as j
    inner join unrecorded_stops as u
        on u.site_id = j.site_id and u.window_end_at < j.interval_end_at and u.may_end_at > j.interval_start_at
    where (j.outside_band and j.ems_ev_energy_kwh > j.band_hi_kwh
            and j.ems_ev_energy_kwh <= j.band_hi_kwh + u.cap_kw * (1 + $conversion_loss)
                * (epoch(least(u.may_end_at, j.interval_end_at)) - epoch(greatest(u.window_end_at, j.interval_start_at)))
                / 3600.0)
        or j.is_conflict_culprit
    group by all
),

explainers as (
    -- The sessions in an interval whose bounds rest on a record in doubt (a broken register
    -- step, samples not trusted) and would explain the finding were it wrong: the
    -- EMS reads more than the band and this session at its power limit would cover the
    -- excess, or it reads less and this session's least share is what the band is missing.
    -- Only these can be the root cause of the finding (evidence.may_follow_from); a session
    -- that merely shares the interval, or whose record is whole, cannot.
    select x.site_id, x.interval_start_at, list(distinct x.session_key order by x.session_key) as session_keys
    from session_in_interval as x
    inner join judged as j using (site_id, interval_start_at)
    where j.outside_band
        and (x.n_broken_steps > 0 or (x.n_samples >= 3 and x.basis = 'even'))
        and (
        (j.ems_ev_energy_kwh > j.band_hi_kwh
            and j.ems_ev_energy_kwh <= j.band_hi_kwh + greatest(
                x.cap_kw * (epoch(j.interval_end_at) - epoch(j.interval_start_at)) / 3600.0 - x.most_kwh, 0)
                * (1 + $conversion_loss))
        or (j.ems_ev_energy_kwh < j.band_lo_kwh and j.ems_ev_energy_kwh >= j.band_lo_kwh - x.least_kwh))
    group by all
),

basis as (
    -- What a clerk needs to see why each session's band is what it is.
    select
        site_id, interval_start_at,
        list({
            'session_key': session_key, 'least_kwh': round(least_kwh, 4), 'most_kwh': round(most_kwh, 4),
            'point_kwh': round(energy_kwh, 4), 'session_energy_kwh': round(session_energy_kwh, 4),
            'basis': basis, 'n_samples': n_samples, 'n_broken_steps': n_broken_steps,
            'window_start': window_start_at, 'window_end': window_end_at, 'stop_missing': stop_missing,
            'power_limit_kw': round(power_limit_kw, 2), 'power_limit_source': power_limit_source
        } order by session_key) as sessions
    from session_in_interval
    group by site_id, interval_start_at
),

interval_findings as (
    select
        null::varchar as session_key, f.site_id, f.site_type,
        null::varchar as charge_point_id, null::varchar as evse_uid, null::varchar as ocpp_transaction_id,
        null::varchar as backend_session_id, null::varchar as cdr_id,
        f.interval_start_at as interval_start,
        case when f.outside_band then f.outside_kwh else f.conflict_shortfall_kwh end
            * coalesce(f.unit_price, 0) as money_at_risk,
        f.price_currency as currency,
        json_object(
            'test', case when f.outside_band then 'outside_band' else 'joint' end,
            'ems_ev_energy_kwh', round(f.ems_ev_energy_kwh, 4),
            'ems_source', 'staging.ems_intervals.ev_energy_kwh (' || f.ems_basis || ' rows)',
            'band_kwh', [round(f.sessions_least_kwh, 4), round(f.sessions_most_kwh, 4)],
            'band_with_tolerance_kwh', [round(f.band_lo_kwh, 4), round(f.band_hi_kwh, 4)],
            'point_estimate_kwh', round(f.sessions_energy_kwh, 4),
            'sessions_energy_kwh', round(f.sessions_energy_kwh, 4),
            'sessions_even_kwh', round(f.sessions_even_kwh, 4),
            'difference_kwh', round(f.ems_ev_energy_kwh - f.sessions_energy_kwh, 4),
            'outside_kwh', round(f.outside_kwh, 4),
            'tolerance_kwh', round(f.tolerance_kwh, 4), 'standby_kwh', round(f.standby_kwh, 4),
            'conversion_loss', $conversion_loss, 'dc_most_kwh', round(f.sessions_most_dc_kwh, 4),
            'interval_end', f.interval_end_at, 'n_sessions', f.n_sessions, 'session_keys',
            case when f.outside_band then f.session_keys else f.conflict_sessions end,
            'may_follow_from', list_sort(list_distinct(list_concat(
                case when f.outside_band then coalesce(x.session_keys, []) else f.conflict_sessions end,
                coalesce(u.session_keys, [])))),
            'unrecorded_stop_session_keys', coalesce(u.session_keys, []),
            'conflict_intervals', f.conflict_intervals,
            'conflict_shortfall_kwh', round(f.conflict_shortfall_kwh, 4),
            'sessions', b.sessions,
            'sessions_source', 'recon.session_intervals (bounds from power limit, sample gaps and window)',
            'unit_price', round(f.unit_price, 4)
        ) as evidence,
        case when f.outside_band then format(
            'The site meter measured {:.3f} kWh into EV chargers between {} and {} UTC; the {} session(s) that may have charged then can have drawn between {:.3f} and {:.3f} kWh ({:.3f} kWh tolerance).',
            f.ems_ev_energy_kwh, strftime(f.interval_start_at, '%Y-%m-%d %H:%M'), strftime(f.interval_end_at, '%H:%M'),
            f.n_sessions, f.sessions_least_kwh, f.sessions_most_kwh, f.tolerance_kwh)
        else format(
            'Each of these {} site meter intervals from {} UTC is possible on its own, but the {} session(s) in them cannot have drawn their energy so that all of them match: {:.3f} kWh cannot be placed. The reading farthest from the estimate is {:.3f} kWh between {} and {} UTC.',
            len(f.conflict_intervals), strftime(list_min(f.conflict_intervals), '%Y-%m-%d %H:%M'),
            len(f.conflict_sessions), f.conflict_shortfall_kwh, f.ems_ev_energy_kwh,
            strftime(f.interval_start_at, '%Y-%m-%d %H:%M'), strftime(f.interval_end_at, '%H:%M'))
        end as explanation,
    from judged as f
    left join basis as b using (site_id, interval_start_at)
    left join suspects as u using (site_id, interval_start_at)
    left join explainers as x using (site_id, interval_start_at)
    where f.outside_band or f.is_conflict_culprit
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
    where energy_kwh >= $session_share * sessions_energy_kwh and sessions_energy_kwh > 0
    group by session_key
    having count(*) filter (where is_flagged) > 0
),

session_findings as (
    select
        i.session_key, i.site_id, i.site_type, i.charge_point_id, i.evse_uid, i.ocpp_transaction_id,
        s.backend_session_id, s.cdr_id,
        null::timestamptz as interval_start,
        abs(i.difference_kwh) * coalesce(pd.unit_price, p.unit_price, 0) as money_at_risk,
        coalesce(s.currency, p.currency) as currency,
        json_object(
            'flagged_intervals', i.intervals, 'n_flagged_intervals', i.n_intervals,
            'n_dominated_intervals', i.n_dominated, 'min_flagged_share', $session_min_flagged_share,
            'session_share_of_difference_kwh', round(i.difference_kwh, 4),
            'source', 'recon.attribution_judgement vs recon.session_intervals',
            'min_intervals', $session_min_intervals, 'min_session_share', $session_share
        ) as evidence,
        format(
            'In {} site meter intervals where this session drew most of the EV energy, the site meter and the session''s own readings disagree in the same direction (about {:.3f} kWh in total).',
            i.n_intervals, i.difference_kwh
        ) as explanation,
    from implicated as i
    left join lineage.sessions as s using (session_key)
    left join site_day_price as pd on pd.site_id = i.site_id and pd.day = cast(coalesce(s.cdr_started_at, s.backend_started_at, s.ocpp_started_at) as date)
    left join site_price as p on p.site_id = i.site_id
    where i.n_intervals >= $session_min_intervals and i.same_direction
        and i.n_intervals >= $session_min_flagged_share * i.n_dominated
)

select * from interval_findings
union all by name
select * from session_findings
