-- recon.session_intervals: per session and fixed site interval ($interval_minutes, UTC-aligned),
-- the least and the most energy the session can have drawn in it (least_kwh, most_kwh: what
-- the evidence proves, used to judge) and a time-prorated point estimate (energy_kwh, for
-- analysts). One row per session x interval of its window where most_kwh > 0, and the
-- interval it starts in.
--
-- What is known about a session:
--   window: start..stop; without a recorded stop start..the backend's or CDR's stop, else the
--     first evidence that it ended (a later transaction on the connector, the connector
--     Available/Finishing, a boot of the charger), else its last sample; a sampled session
--     ends at the latest one of its own longest sample gaps after its last sample.
--   power limit (power_limit_kw, power_limit_source): registry max_power_kw, else the OCPI
--     connector's max_electric_power, else its voltage x amperage x phases, else the highest
--     power the session's own samples show, else $default_max_power_kw. Bounds use it x
--     $power_margin (limits are nameplates; meters and clocks are not exact).
--   samples: register deltas between consecutive samples of the OCPP transaction (meterStart,
--     MeterValues, meterStop). Each delta d lies somewhere inside its gap of G hours: in an
--     interval overlapping the gap by o hours at least max(0, d - P (G - o)) and at most
--     min(d, P o). A step the EVSE cannot have delivered (a reset, a unit error) is unknown:
--     it joins the "rest" of the window.
--   rest: the window not covered by trusted steps (no samples at all, a broken step, the head
--     before the first or the tail after the last sample) holds the session energy (backend,
--     else CDR, else OCPP) minus what the trusted steps hold; with no such energy it is
--     unknown (0 .. P x rest hours). In an interval overlapping the rest by o of U hours it is
--     at least max(0, lo - P (U - o)) and at most min(hi, P o).
-- Sample times move onto the CSMS clock when the transaction's least (received_at -
-- sampled_at) exceeds $clock_offset_min_s, because the EMS meters on site time.
with
sess as (
    select
        s.session_key, s.site_id, s.site_type, s.charge_point_id, s.connector_id, s.evse_uid,
        s.ocpp_transaction_id,
        coalesce(s.ocpp_started_at, s.backend_started_at, s.cdr_started_at) as started_at,
        coalesce(s.ocpp_stopped_at, s.backend_stopped_at, s.cdr_stopped_at) as stopped_at,
        -- The backend first: it is what the session was billed on and it does not depend on
        -- the charger's register, which is what may be broken here.
        -- A transaction without a stop has no energy yet: its register delta so far is a
        -- floor, not the energy (unknown: the samples and the window bound it).
        coalesce(
            s.backend_energy_kwh, s.cdr_energy_kwh,
            case when s.ocpp_stopped_at is not null and s.ocpp_energy_kwh between 0 and 10000
                then s.ocpp_energy_kwh end
        ) as session_energy_kwh,
        s.backend_energy_kwh
    from lineage.sessions as s
    -- A CDR alone (orphan) is no evidence that energy flowed at the site.
    where s.ocpp_transaction_id is not null or s.backend_session_id is not null
),

tx as (
    select
        s.session_key, t.charge_point_id, t.transaction_id as ocpp_transaction_id, t.connector_id,
        t.started_at, t.stopped_at, t.start_received_at, t.stop_received_at,
        t.meter_start_kwh, t.meter_stop_kwh, coalesce(t.transaction_ids, [t.transaction_id]) as transaction_ids
    from sess as s
    inner join lineage.transactions as t
        on t.charge_point_id = s.charge_point_id and t.transaction_id = s.ocpp_transaction_id
),

aliases as (
    -- A 1.6 StartTransaction re-sent after a reconnect may get a second id; samples carry either.
    select charge_point_id, ocpp_transaction_id, unnest(transaction_ids) as alias_id
    from tx
),

raw_points as (
    select
        m.charge_point_id, a.ocpp_transaction_id as transaction_id, m.sampled_at as sample_at, m.received_at,
        m.value as register_kwh,
        coalesce(m.context, '') not in ('Transaction.Begin', 'Transaction.End') as is_periodic
    from staging.ocpp_meter_values as m
    inner join aliases as a on a.charge_point_id = m.charge_point_id and a.alias_id = m.transaction_id
    where coalesce(m.measurand, 'Energy.Active.Import.Register') = 'Energy.Active.Import.Register'
        and coalesce(m.phase, '') = ''
        and m.transaction_id is not null and m.value is not null and m.sampled_at is not null
    union all
    select charge_point_id, ocpp_transaction_id, started_at, start_received_at, meter_start_kwh, false
    from tx where started_at is not null and meter_start_kwh >= 0
    union all
    select charge_point_id, ocpp_transaction_id, stopped_at, stop_received_at, meter_stop_kwh, false
    from tx where stopped_at is not null and meter_stop_kwh >= 0
),

unit_factor as (
    -- Periodic samples in kWh labelled Wh (or the reverse) sit 1000x off the transaction's
    -- own start/stop registers: rescale them so the series keeps its shape. The larger of the
    -- two registers: after a reset the stop register is near zero.
    select
        r.charge_point_id, r.transaction_id,
        case
            when max(r.register_kwh) filter (where r.is_periodic) > 0
                and greatest(any_value(t.meter_stop_kwh), any_value(t.meter_start_kwh)) > 0
            then
                case
                    when greatest(any_value(t.meter_stop_kwh), any_value(t.meter_start_kwh))
                        / max(r.register_kwh) filter (where r.is_periodic) > 31.6 then 1000.0
                    when greatest(any_value(t.meter_stop_kwh), any_value(t.meter_start_kwh))
                        / max(r.register_kwh) filter (where r.is_periodic) < 1 / 31.6 then 0.001
                    else 1.0
                end
            else 1.0
        end as factor
    from raw_points as r
    inner join tx as t on t.charge_point_id = r.charge_point_id and t.ocpp_transaction_id = r.transaction_id
    group by r.charge_point_id, r.transaction_id
),

points as (
    -- A sample re-sent or echoed in the stop event is one point.
    select
        r.charge_point_id, r.transaction_id, r.sample_at, min(r.received_at) as received_at,
        max(r.register_kwh * case when r.is_periodic then f.factor else 1.0 end) as register_kwh,
        bool_or(r.is_periodic) as is_periodic
    from raw_points as r
    inner join unit_factor as f using (charge_point_id, transaction_id)
    group by all
),

offsets as (
    -- Points stamped by an unset clock (1970) say nothing about the clock's skew. The least
    -- lag: a frame cannot arrive before it was sent, and one from the offline queue (a stop
    -- sent hours later) only adds lag; with few samples a median would be that delay.
    select
        charge_point_id, transaction_id,
        min(epoch(received_at) - epoch(sample_at)) as offset_s
    from points
    where received_at is not null and sample_at >= cast($epoch_before as timestamptz)
    group by all
),

aligned as (
    select
        p.charge_point_id, p.transaction_id, p.register_kwh, p.is_periodic,
        case
            when p.sample_at < cast($epoch_before as timestamptz) then coalesce(p.received_at, p.sample_at)
            when abs(coalesce(o.offset_s, 0)) > $clock_offset_min_s then p.sample_at + to_seconds(o.offset_s)
            else p.sample_at
        end as sample_at
    from points as p
    left join offsets as o using (charge_point_id, transaction_id)
),

epochs as (
    -- A register that drops and never comes back above where it was has been reset (or
    -- replaced): the samples after it count from a new base. Each run of samples between
    -- resets is an epoch; the step across a reset is unknown, the steps on each side are not.
    select
        *,
        sum(is_reset::int) over (partition by charge_point_id, transaction_id order by sample_at, register_kwh
                                 rows between unbounded preceding and current row) as epoch
    from (
        select
            *,
            coalesce(register_kwh < lag(register_kwh) over w
                and coalesce(max(register_kwh) over (w rows between current row and unbounded following), register_kwh)
                    < lag(register_kwh) over w, false) as is_reset
        from aligned
        window w as (partition by charge_point_id, transaction_id order by sample_at, register_kwh)
    )
),

monotone as (
    -- A register that dips for a sample and recovers (rollback) is read without the dip:
    -- a point below an earlier point of the same epoch is dropped, so the energy around it
    -- spreads over the whole gap instead of bunching after it.
    select charge_point_id, transaction_id, sample_at, register_kwh, epoch, is_periodic
    from epochs
    qualify register_kwh >= coalesce(max(register_kwh) over (
        partition by charge_point_id, transaction_id, epoch order by sample_at, register_kwh
        rows between unbounded preceding and 1 preceding
    ), register_kwh)
),

sample_power as (
    -- The highest power the session's own samples show, over gaps long enough that rounding
    -- and clock jitter do not dominate. Only steps that touch a periodic sample: meterStart
    -- to meterStop alone is the session's average power, not what the EVSE can deliver.
    select charge_point_id, transaction_id, max(step_kwh / (gap_s / 3600.0)) as kw
    from (
        select
            charge_point_id, transaction_id,
            register_kwh - lag(register_kwh) over w as step_kwh,
            epoch(sample_at) - epoch(lag(sample_at) over w) as gap_s,
            is_periodic or lag(is_periodic) over w as touches_sample
        from monotone
        window w as (partition by charge_point_id, transaction_id, epoch order by sample_at, register_kwh)
    )
    where gap_s >= 300 and step_kwh > 0 and touches_sample
    group by all
),

registry as (
    select charge_point_id, try_cast(connector_id as integer) as connector_id, max(max_power_kw) as kw
    from staging.evses
    where max_power_kw > 0
    group by all
),

ocpi as (
    select
        evse_uid,
        max(c.max_electric_power) / 1000.0 as kw,
        max(c.max_voltage * c.max_amperage * case when c.power_type = 'AC_3_PHASE' then 3 else 1 end) / 1000.0
            as via_kw,
        bool_or(c.power_type = 'DC') as is_dc
    from (
        select evse_uid, unnest(from_json(connectors,
            '[{"max_electric_power":"DOUBLE","max_voltage":"DOUBLE","max_amperage":"DOUBLE","power_type":"VARCHAR"}]'
        )) as c
        from staging.location_evse_status
        where evse_uid is not null
    )
    group by evse_uid
),

limits as (
    select
        s.session_key,
        coalesce(r.kw, nullif(o.kw, 0), nullif(o.via_kw, 0), p.kw, $default_max_power_kw) as power_limit_kw,
        case
            when r.kw is not null then 'registry max_power_kw'
            when nullif(o.kw, 0) is not null then 'OCPI max_electric_power'
            when nullif(o.via_kw, 0) is not null then 'OCPI max_voltage x max_amperage x phases'
            when p.kw is not null then 'highest power in its own samples'
            else 'default_max_power_kw'
        end as power_limit_source,
        -- Only a DC charger converts (the site meter sees its losses); an AC EVSE's meter
        -- measures the same AC the site meter does. Above 43.5 kW (AC's 63 A x 400 V x 3)
        -- an EVSE is DC whatever the registry says.
        coalesce(o.is_dc, false)
            or coalesce(r.kw, nullif(o.kw, 0), nullif(o.via_kw, 0), p.kw, 0) > 43.5 as is_dc
    from sess as s
    left join registry as r on r.charge_point_id = s.charge_point_id and r.connector_id = s.connector_id
    left join ocpi as o on o.evse_uid = s.evse_uid
    left join sample_power as p
        on p.charge_point_id = s.charge_point_id and p.transaction_id = s.ocpp_transaction_id
),

capped as (
    select t.charge_point_id, t.ocpp_transaction_id, t.session_key, l.power_limit_kw * $power_margin as cap_kw
    from tx as t
    inner join limits as l using (session_key)
),

neighbours as (
    select
        m.*,
        lag(m.register_kwh) over w as prev_kwh, lag(m.sample_at) over w as prev_at,
        lead(m.register_kwh) over w as next_kwh, lead(m.sample_at) over w as next_at,
        c.cap_kw
    from monotone as m
    inner join capped as c on c.charge_point_id = m.charge_point_id and c.ocpp_transaction_id = m.transaction_id
    window w as (partition by m.charge_point_id, m.transaction_id, m.epoch order by m.sample_at, m.register_kwh)
),

undipped as (
    -- A dip shallower than one sample's rise stays above the previous point; it shows as a
    -- step above the EVSE's power right after it. Dropping such a point when the gap around
    -- it is plausible again is the same repair.
    select charge_point_id, transaction_id, sample_at, register_kwh, epoch, cap_kw
    from neighbours
    where not coalesce(
        next_kwh - register_kwh > cap_kw * (epoch(next_at) - epoch(sample_at)) / 3600.0 + $register_rounding_kwh
        and next_kwh - prev_kwh <= cap_kw * (epoch(next_at) - epoch(prev_at)) / 3600.0 + $register_rounding_kwh,
        false
    )
),

steps as (
    select
        c.session_key,
        lag(u.sample_at) over w as seg_start_at,
        u.sample_at as seg_end_at,
        u.register_kwh - lag(u.register_kwh) over w as delta_kwh,
        u.epoch = lag(u.epoch) over w as same_epoch,
        u.cap_kw
    from undipped as u
    inner join capped as c on c.charge_point_id = u.charge_point_id and c.ocpp_transaction_id = u.transaction_id
    window w as (partition by u.charge_point_id, u.transaction_id order by u.sample_at, u.register_kwh)
),

judged_steps as (
    select
        *,
        -- A jump above the EVSE's power is not energy, nor is a step across a reset: unknown.
        same_epoch and delta_kwh >= 0
            and delta_kwh <= cap_kw * (epoch(seg_end_at) - epoch(seg_start_at)) / 3600.0 + $register_rounding_kwh
            as is_valid
    from steps
    where seg_start_at is not null
),

sample_span as (
    select
        session_key, min(seg_start_at) as first_at, max(seg_end_at) as last_at,
        count(*) + 1 as n_samples,
        count(*) filter (where not is_valid) as n_broken_steps,
        max(epoch(seg_end_at) - epoch(seg_start_at)) as max_gap_s,
        coalesce(sum(delta_kwh) filter (where is_valid), 0) as valid_kwh
    from judged_steps
    group by session_key
),

trusted_sessions as (
    -- Samples that agree with each other but not with the session energy by a factor of 2
    -- are a unit-labelling fault (Wh vs kWh): their shape is right, their scale is not.
    select p.session_key
    from sample_span as p
    inner join sess as s using (session_key)
    where p.valid_kwh > 0
        and (s.session_energy_kwh is null or s.session_energy_kwh <= 0
            or p.valid_kwh / s.session_energy_kwh between 0.5 and 2.0)
),

ended as (
    -- Evidence that a session without a recorded stop had ended: the first of a later
    -- transaction on the connector, the connector Available/Finishing, a boot of the charger.
    select
        s.session_key,
        least(
            (select min(n.started_at) from lineage.transactions as n
             where n.charge_point_id = s.charge_point_id and n.connector_id = s.connector_id
                and n.started_at > s.started_at),
            (select min(st.status_at) from staging.ocpp_status as st
             where st.charge_point_id = s.charge_point_id and st.connector_id = s.connector_id
                and st.status in ('Available', 'Finishing')
                and st.status_at > greatest(s.started_at, coalesce(p.last_at, s.started_at))),
            (select min(b.requested_at) from staging.ocpp_boots as b
             where b.charge_point_id = s.charge_point_id and b.action = 'BootNotification'
                and b.requested_at > greatest(s.started_at, coalesce(p.last_at, s.started_at)))
        ) as ended_at
    from sess as s
    left join sample_span as p using (session_key)
    where s.stopped_at is null
),

windows as (
    select
        s.*, l.power_limit_kw, l.power_limit_source, l.is_dc, l.power_limit_kw * $bound_power_margin as cap_kw,
        t.session_key is not null as is_trusted,
        p.n_samples, p.n_broken_steps, p.max_gap_s,
        s.stopped_at is null as stop_missing, e.ended_at as end_evidence_at,
        least(s.started_at, p.first_at) as window_start_at,
        greatest(coalesce(
            s.stopped_at,
            -- A charger that samples would have sent another sample had it kept drawing: a
            -- stopless session it sampled ends within its own longest gap after the last one.
            case when p.n_samples >= 3 then least(e.ended_at, p.last_at + to_seconds(cast(p.max_gap_s as bigint))) end,
            e.ended_at, p.last_at, s.started_at), p.last_at) as window_end_at,
        case when t.session_key is not null then p.valid_kwh else 0 end as trusted_kwh
    from sess as s
    inner join limits as l using (session_key)
    left join trusted_sessions as t using (session_key)
    left join sample_span as p using (session_key)
    left join ended as e using (session_key)
    where s.started_at is not null
),

usable as (
    -- A stop before start or a session spanning days is a clock fault, not a shape.
    select * from windows
    where window_end_at >= window_start_at and window_end_at <= window_start_at + interval 2 day
),

step_pieces as (
    select
        u.session_key, 'step' as kind, j.seg_start_at as piece_start_at, j.seg_end_at as piece_end_at,
        greatest(j.delta_kwh, 0) as piece_kwh
    from judged_steps as j
    inner join usable as u using (session_key)
    where u.is_trusted and j.is_valid
),

rest_spans as (
    -- The window minus the trusted steps: head, broken steps, tail; all of it without samples.
    select session_key, window_start_at as piece_start_at, window_end_at as piece_end_at
    from usable where not is_trusted
    union all
    select session_key, window_start_at, first_at
    from usable inner join sample_span using (session_key)
    where is_trusted and first_at > window_start_at
    union all
    select session_key, last_at, window_end_at
    from usable inner join sample_span using (session_key)
    where is_trusted and window_end_at > last_at
    union all
    select j.session_key, j.seg_start_at, j.seg_end_at
    from judged_steps as j inner join usable as u using (session_key)
    where u.is_trusted and not j.is_valid
),

rest as (
    select
        u.session_key,
        coalesce(sum(epoch(r.piece_end_at) - epoch(r.piece_start_at)), 0) / 3600.0 as rest_h,
        any_value(u.session_energy_kwh) as session_energy_kwh,
        any_value(u.trusted_kwh) as trusted_kwh,
        any_value(u.cap_kw) as cap_kw
    from usable as u
    left join rest_spans as r using (session_key)
    group by u.session_key
),

rest_energy as (
    select
        session_key, rest_h,
        -- What the session drew beyond its trusted steps, where there is room for it; without
        -- any session energy the rest is unknown.
        case when session_energy_kwh is null then 0.0
             else least(greatest(session_energy_kwh - trusted_kwh, 0), cap_kw * rest_h) end as rest_lo_kwh,
        case when session_energy_kwh is null then cap_kw * rest_h
             else least(greatest(session_energy_kwh - trusted_kwh, 0), cap_kw * rest_h) end as rest_hi_kwh
    from rest
),

pieces as (
    select session_key, kind, piece_start_at, piece_end_at, piece_kwh from step_pieces
    union all
    select r.session_key, 'rest', r.piece_start_at, r.piece_end_at, null
    from rest_spans as r inner join usable using (session_key)
),

split as (
    select
        p.*,
        unnest(generate_series(
            time_bucket(to_minutes(cast($interval_minutes as bigint)), p.piece_start_at),
            p.piece_end_at,
            to_minutes(cast($interval_minutes as bigint))
        )) as interval_start_at
    from pieces as p
    where p.piece_end_at >= p.piece_start_at
),

piece_overlaps as (
    select
        *,
        epoch(piece_end_at) - epoch(piece_start_at) as piece_s,
        case
            -- an instant (a zero-length gap) belongs to the interval it falls in
            when piece_end_at = piece_start_at then
                case when interval_start_at = time_bucket(to_minutes(cast($interval_minutes as bigint)), piece_start_at)
                     then 0.0 else -1.0 end
            else greatest(
                epoch(least(piece_end_at, interval_start_at + to_minutes(cast($interval_minutes as bigint))))
                - epoch(greatest(piece_start_at, interval_start_at)),
                0
            )
        end as overlap_s
    from split
),

step_bounds as (
    select
        o.session_key, o.interval_start_at,
        sum(least(o.piece_kwh, u.cap_kw * o.overlap_s / 3600.0)) as most_kwh,
        sum(greatest(o.piece_kwh - u.cap_kw * (o.piece_s - o.overlap_s) / 3600.0, 0)) as least_kwh,
        sum(case when o.piece_s = 0 then o.piece_kwh else o.piece_kwh * o.overlap_s / o.piece_s end) as energy_kwh
    from piece_overlaps as o
    inner join usable as u using (session_key)
    where o.kind = 'step' and o.overlap_s >= 0 and (o.overlap_s > 0 or o.piece_s = 0)
    group by all
),

rest_overlap as (
    select session_key, interval_start_at, sum(greatest(overlap_s, 0)) / 3600.0 as overlap_h,
        bool_or(piece_s = 0 and overlap_s = 0) as holds_instant
    from piece_overlaps
    where kind = 'rest' and (overlap_s > 0 or (piece_s = 0 and overlap_s = 0))
    group by all
),

rest_bounds as (
    select
        o.session_key, o.interval_start_at,
        case when e.rest_h = 0 then e.rest_hi_kwh else least(e.rest_hi_kwh, u.cap_kw * o.overlap_h) end as most_kwh,
        case when e.rest_h = 0 then e.rest_lo_kwh
             else greatest(e.rest_lo_kwh - u.cap_kw * (e.rest_h - o.overlap_h), 0) end as least_kwh,
        -- the point estimate spreads the rest evenly over its hours
        case when e.rest_h = 0 then (e.rest_lo_kwh + e.rest_hi_kwh) / 2
             else (e.rest_lo_kwh + e.rest_hi_kwh) / 2 * o.overlap_h / e.rest_h end as energy_kwh
    from rest_overlap as o
    inner join rest_energy as e using (session_key)
    inner join usable as u using (session_key)
),

bounds as (
    select session_key, interval_start_at, sum(least_kwh) as least_kwh, sum(most_kwh) as most_kwh,
        sum(energy_kwh) as energy_kwh, sum(energy_kwh) filter (where kind = 'rest') as rest_kwh
    from (
        select *, 'step' as kind from step_bounds
        union all by name
        select *, 'rest' as kind from rest_bounds
    )
    group by all
)

select
    u.session_key, u.site_id, u.site_type, u.charge_point_id, u.evse_uid, u.ocpp_transaction_id,
    b.interval_start_at,
    b.interval_start_at + to_minutes(cast($interval_minutes as bigint)) as interval_end_at,
    b.energy_kwh,
    b.least_kwh,
    b.most_kwh,
    coalesce(b.rest_kwh, 0) as rest_kwh,
    case
        when not u.is_trusted then 'even'
        when e.rest_hi_kwh > 0 then 'meter_values+rest'
        else 'meter_values'
    end as basis,
    e.rest_lo_kwh + u.trusted_kwh as session_least_kwh,
    e.rest_hi_kwh + u.trusted_kwh as session_most_kwh,
    u.session_energy_kwh,
    u.window_start_at, u.window_end_at, u.stop_missing, u.end_evidence_at,
    u.power_limit_kw, u.power_limit_source, u.cap_kw, u.is_dc,
    coalesce(u.n_samples, 0) as n_samples,
    coalesce(u.n_broken_steps, 0) as n_broken_steps,
    u.max_gap_s as max_sample_gap_s,
    e.rest_h
from bounds as b
inner join usable as u using (session_key)
inner join rest_energy as e using (session_key)
-- A session that can hold energy nowhere keeps the interval it starts in, so the session and
-- its basis stay visible (a start without a stop, samples or energy).
qualify b.most_kwh > 0
    or (max(b.most_kwh) over (partition by b.session_key) = 0
        and b.interval_start_at = min(b.interval_start_at) over (partition by b.session_key))
