-- recon.session_intervals: each session's energy prorated into fixed site intervals
-- ($interval_minutes, UTC-aligned). One row per session x interval with energy > 0.
--
-- Basis, best first:
--   meter_values: register deltas between consecutive samples of the OCPP transaction
--     (meterStart, MeterValues, meterStop), each delta spread over its two samples by
--     time overlap. Sample times move onto the CSMS clock when the transaction's median
--     (received_at - sampled_at) exceeds $clock_offset_min_s, because the EMS meters on
--     site time and a skewed charger clock would shift energy into the wrong interval.
--   even: no usable samples (no OCPP, a single sample, a register that jumps beyond
--     what the EVSE can deliver or steps back, samples off the backend's energy by more
--     than 2x): the session's energy (backend, else CDR, else OCPP) spread evenly over
--     start..stop.
with
tx as (
    select
        s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
        t.started_at, t.stopped_at, t.start_received_at, t.stop_received_at,
        t.meter_start_kwh, t.meter_stop_kwh, coalesce(t.transaction_ids, [t.transaction_id]) as transaction_ids,
        coalesce(e.max_power_kw, $default_max_power_kw) as max_power_kw
    from lineage.sessions as s
    inner join lineage.transactions as t
        on t.charge_point_id = s.charge_point_id and t.transaction_id = s.ocpp_transaction_id
    left join staging.evses as e
        on e.charge_point_id = s.charge_point_id and try_cast(e.connector_id as integer) = s.connector_id
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
    -- own start/stop registers: rescale them so the series keeps its shape.
    select
        r.charge_point_id, r.transaction_id,
        case
            when max(r.register_kwh) filter (where r.is_periodic) > 0
                and coalesce(nullif(any_value(t.meter_stop_kwh), 0), any_value(t.meter_start_kwh)) > 0
            then
                case
                    when coalesce(nullif(any_value(t.meter_stop_kwh), 0), any_value(t.meter_start_kwh))
                        / max(r.register_kwh) filter (where r.is_periodic) > 31.6 then 1000.0
                    when coalesce(nullif(any_value(t.meter_stop_kwh), 0), any_value(t.meter_start_kwh))
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
        max(r.register_kwh * case when r.is_periodic then f.factor else 1.0 end) as register_kwh
    from raw_points as r
    inner join unit_factor as f using (charge_point_id, transaction_id)
    group by all
),

offsets as (
    -- Points stamped by an unset clock (1970) say nothing about the clock's skew.
    select
        charge_point_id, transaction_id,
        median(epoch(received_at) - epoch(sample_at)) as offset_s
    from points
    where received_at is not null and sample_at >= cast($epoch_before as timestamptz)
    group by all
),

aligned as (
    select
        p.charge_point_id, p.transaction_id, p.register_kwh,
        case
            when p.sample_at < cast($epoch_before as timestamptz) then coalesce(p.received_at, p.sample_at)
            when abs(coalesce(o.offset_s, 0)) > $clock_offset_min_s then p.sample_at + to_seconds(o.offset_s)
            else p.sample_at
        end as sample_at
    from points as p
    left join offsets as o using (charge_point_id, transaction_id)
),

monotone as (
    -- A register that dips for a sample and recovers (rollback) is read without the dip:
    -- a point below an earlier point of the same transaction is dropped, so the energy
    -- around it spreads over the whole gap instead of bunching after it.
    select charge_point_id, transaction_id, sample_at, register_kwh
    from aligned
    qualify register_kwh >= coalesce(max(register_kwh) over (
        partition by charge_point_id, transaction_id order by sample_at, register_kwh
        rows between unbounded preceding and 1 preceding
    ), register_kwh)
),

neighbours as (
    select
        m.*,
        lag(m.register_kwh) over w as prev_kwh, lag(m.sample_at) over w as prev_at,
        lead(m.register_kwh) over w as next_kwh, lead(m.sample_at) over w as next_at,
        tx.max_power_kw * $power_margin as cap_kw
    from monotone as m
    inner join tx on tx.charge_point_id = m.charge_point_id and tx.ocpp_transaction_id = m.transaction_id
    window w as (partition by m.charge_point_id, m.transaction_id order by m.sample_at, m.register_kwh)
),

undipped as (
    -- A dip shallower than one sample's rise stays above the previous point; it shows as a
    -- step above the EVSE's power right after it. Dropping such a point when the gap around
    -- it is plausible again is the same repair.
    select charge_point_id, transaction_id, sample_at, register_kwh
    from neighbours
    where not coalesce(
        next_kwh - register_kwh > cap_kw * (epoch(next_at) - epoch(sample_at)) / 3600.0 + $register_rounding_kwh
        and next_kwh - prev_kwh <= cap_kw * (epoch(next_at) - epoch(prev_at)) / 3600.0 + $register_rounding_kwh,
        false
    )
),

deltas as (
    select
        a.charge_point_id, a.transaction_id,
        lag(a.sample_at) over w as seg_start_at,
        a.sample_at as seg_end_at,
        a.register_kwh - lag(a.register_kwh) over w as delta_kwh
    from undipped as a
    window w as (partition by a.charge_point_id, a.transaction_id order by a.sample_at, a.register_kwh)
),

segments as (
    select
        tx.session_key, tx.site_id, tx.site_type, tx.charge_point_id, tx.evse_uid, tx.ocpp_transaction_id,
        d.seg_start_at, d.seg_end_at, d.delta_kwh,
        -- A jump above the EVSE's power is not energy and disqualifies the samples.
        d.delta_kwh <= tx.max_power_kw * $power_margin
                * (epoch(d.seg_end_at) - epoch(d.seg_start_at)) / 3600.0 + $register_rounding_kwh
            as is_valid
    from deltas as d
    inner join tx on tx.charge_point_id = d.charge_point_id and tx.ocpp_transaction_id = d.transaction_id
    where d.seg_start_at is not null
),

sampled_sessions as (
    -- Samples that agree with each other but not with the backend by a factor of 2 are
    -- a unit-labelling fault (Wh vs kWh): their shape is right, their scale is not.
    select g.session_key
    from segments as g
    inner join lineage.sessions as s using (session_key)
    group by g.session_key
    having bool_and(g.is_valid) and sum(g.delta_kwh) > 0
        and (any_value(s.backend_energy_kwh) is null or any_value(s.backend_energy_kwh) <= 0
            or sum(g.delta_kwh) / any_value(s.backend_energy_kwh) between 0.5 and 2.0)
),

sampled as (
    select
        session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id,
        seg_start_at, seg_end_at, greatest(delta_kwh, 0) as energy_kwh, 'meter_values' as basis
    from segments
    where session_key in (select session_key from sampled_sessions) and delta_kwh > 0
),

even as (
    select
        s.session_key, s.site_id, s.site_type, s.charge_point_id, s.evse_uid, s.ocpp_transaction_id,
        coalesce(s.ocpp_started_at, s.backend_started_at, s.cdr_started_at) as seg_start_at,
        coalesce(s.ocpp_stopped_at, s.backend_stopped_at, s.cdr_stopped_at) as seg_end_at,
        -- The backend first: a session here either has no OCPP samples or samples that
        -- cannot be trusted, and then neither can its register-based OCPP energy.
        coalesce(
            s.backend_energy_kwh, s.cdr_energy_kwh,
            case when s.ocpp_energy_kwh between 0 and 10000 then s.ocpp_energy_kwh end
        ) as energy_kwh,
        'even' as basis
    from lineage.sessions as s
    where s.session_key not in (select session_key from sampled_sessions)
        -- A CDR alone (orphan) is no evidence that energy flowed at the site.
        and (s.ocpp_transaction_id is not null or s.backend_session_id is not null)
),

all_segments as (
    select * from sampled
    union all
    select * from even
    where energy_kwh > 0 and seg_start_at is not null and seg_end_at >= seg_start_at
        -- a stop before start or a session spanning days is a clock fault, not a shape
        and seg_end_at <= seg_start_at + interval 2 day
),

split as (
    select
        g.*,
        unnest(generate_series(
            time_bucket(to_minutes(cast($interval_minutes as bigint)), g.seg_start_at),
            g.seg_end_at,
            to_minutes(cast($interval_minutes as bigint))
        )) as interval_start_at
    from all_segments as g
),

shares as (
    select
        *,
        case
            when seg_end_at = seg_start_at then
                case when interval_start_at = time_bucket(to_minutes(cast($interval_minutes as bigint)), seg_start_at) then 1.0 else 0.0 end
            else greatest(
                epoch(least(seg_end_at, interval_start_at + to_minutes(cast($interval_minutes as bigint))))
                - epoch(greatest(seg_start_at, interval_start_at)),
                0
            ) / (epoch(seg_end_at) - epoch(seg_start_at))
        end as share
    from split
)

select
    session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id,
    interval_start_at,
    interval_start_at + to_minutes(cast($interval_minutes as bigint)) as interval_end_at,
    sum(energy_kwh * share) as energy_kwh,
    any_value(basis) as basis,
    count(*) as n_segments
from shares
where share > 0
group by session_key, site_id, site_type, charge_point_id, evse_uid, ocpp_transaction_id, interval_start_at
