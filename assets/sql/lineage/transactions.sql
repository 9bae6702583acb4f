-- lineage.transactions: one row per OCPP transaction of a charger, reconstructed from
-- staging.ocpp_transaction_events and staging.ocpp_meter_values, with the field's failure
-- forms marked in `anomalies` rather than dropped.
-- Params:
--   $epoch_before (TIMESTAMPTZ): charger timestamps before it mean an unset clock (1970).
--   $offline_queue_s (DOUBLE): a stop sent this long after its own timestamp came from the
--       charger's offline queue. "After" is measured on the charger's clock as this
--       transaction's live frames show it (the smallest receive-minus-stamp lag of its start
--       and periodic samples): a charger whose clock runs 20 minutes slow sends every frame
--       "20 minutes late", and that is clock skew, not queuing.
--   $max_plausible_kw (DOUBLE): no EVSE delivers more on average; above it a kWh register
--       was labelled Wh the other way round.
with events as (
    select
        e.*,
        coalesce(f.received_at_basis, 'csms') as received_basis,
        e.event_at < $epoch_before as is_epoch,
        -- An unset charger clock says nothing about when: the CSMS receive time is the best
        -- time there is.
        case when e.event_at is null or e.event_at < $epoch_before then e.received_at else e.event_at end as best_at,
        -- the order the CSMS got them in (for a bare capture: the file's order)
        row_number() over (
            partition by e.charge_point_id order by e.received_at, e.source_file, e.record_no
        ) as charger_order,
    from staging.ocpp_transaction_events as e
    -- only the rare frames without a CSMS receive time (bare captures) are looked up
    left join (
        select source_file, record_no, received_at_basis from staging.ocpp_frames where received_at_basis <> 'csms'
    ) as f on f.source_file = e.source_file and f.record_no = e.record_no
    where not e.is_retransmit
),

-- OCPP 1.6 -------------------------------------------------------------------------------
-- A StartTransaction re-sent after a reconnect repeats connector, idTag, meterStart and
-- timestamp; the CSMS may answer it with a second transaction id. One transaction.
starts_16 as (
    select
        *,
        first_value(coalesce(transaction_id, 'msg:' || msg_id)) over start_copies as tx_key,
        row_number() over start_copies as copy_no,
    from events
    where ocpp_version = '1.6' and event_type = 'started'
    window start_copies as (
        partition by charge_point_id, connector_id, id_tag_hash, register_value_raw, event_at
        order by received_at, source_file, record_no
    )
),

assigned_16 as (
    select charge_point_id, transaction_id, any_value(tx_key) as tx_key,
    from starts_16
    where transaction_id is not null
    group by all
),

-- A stop whose transactionId no CALLRESULT assigned (the answer was not logged, or a bare
-- capture without answers) belongs to the start before it on its connector that got no id:
-- the latest such start received before the stop, with no other start on that connector in
-- between, and a meterStop not below its meterStart. Order is the CSMS's receive order, not
-- the charger's stamps: a clock that stepped back can stamp the stop before its own start.
-- The stop names no connector in 1.6; its transaction's MeterValues do.
stop_connectors_16 as (
    select charge_point_id, transaction_id, min(connector_id) as connector_id,
    from staging.ocpp_meter_values
    where ocpp_version = '1.6' and transaction_id is not null and connector_id is not null
    group by all
),

inferred_16 as (
    select
        p.charge_point_id,
        p.transaction_id,
        s.tx_key,
        p.charger_order as stop_order,
    from events as p
    left join stop_connectors_16 as c
        on c.charge_point_id = p.charge_point_id and c.transaction_id = p.transaction_id
    inner join starts_16 as s
        on s.charge_point_id = p.charge_point_id
        and s.copy_no = 1
        and s.transaction_id is null
        and s.charger_order < p.charger_order
        and (c.connector_id is null or s.connector_id = c.connector_id)
        and coalesce(p.register_value_raw >= s.register_value_raw, true)
    where p.ocpp_version = '1.6' and p.event_type = 'ended' and p.transaction_id is not null
        and not exists (
            select 1 from assigned_16 as a
            where a.charge_point_id = p.charge_point_id and a.transaction_id = p.transaction_id
        )
        -- a start re-sent after a reconnect may have got its id on another copy
        and not exists (select 1 from assigned_16 as a where a.charge_point_id = s.charge_point_id and a.tx_key = s.tx_key)
        and not exists (
            select 1 from starts_16 as n
            where n.charge_point_id = s.charge_point_id and n.connector_id = s.connector_id
                and n.charger_order > s.charger_order and n.charger_order < p.charger_order
                and n.tx_key <> s.tx_key
        )
    qualify row_number() over (partition by p.charge_point_id, p.transaction_id order by s.charger_order desc) = 1
),

aliases_16 as (
    select charge_point_id, transaction_id, tx_key, false as is_inferred,
    from assigned_16
    union all
    select charge_point_id, transaction_id, tx_key, true,
    from inferred_16
    -- one start takes one stop's id: the first stop after it
    qualify row_number() over (partition by charge_point_id, tx_key order by stop_order) = 1
),

start_agg_16 as (
    select
        charge_point_id,
        tx_key,
        arg_max(transaction_id, received_at) filter (where transaction_id is not null) as last_assigned_id,
        list(distinct transaction_id) filter (where transaction_id is not null) as transaction_ids,
        count(*) > 1 as is_restarted_start,
    from starts_16
    group by all
),

first_start_16 as (
    select * from starts_16 where copy_no = 1
),

stops_16 as (
    select
        e.*,
        coalesce(a.tx_key, 'stop:' || e.transaction_id) as tx_key,
        row_number() over (
            partition by e.charge_point_id, coalesce(a.tx_key, 'stop:' || e.transaction_id)
            order by e.received_at, e.source_file, e.record_no
        ) as stop_no,
        count(*) over (partition by e.charge_point_id, coalesce(a.tx_key, 'stop:' || e.transaction_id)) as n_stops,
    from events as e
    left join aliases_16 as a on e.charge_point_id = a.charge_point_id and e.transaction_id = a.transaction_id
    where e.ocpp_version = '1.6' and e.event_type = 'ended'
),

tx_16 as (
    select
        coalesce(s.charge_point_id, p.charge_point_id) as charge_point_id,
        coalesce(s.tx_key, p.tx_key) as tx_key,
        coalesce(s.connector_id, p.connector_id) as connector_id,
        '1.6' as ocpp_version,
        coalesce(p.transaction_id, g.last_assigned_id) as transaction_id,
        coalesce(g.transaction_ids, [p.transaction_id]) as transaction_ids,
        coalesce(s.id_tag_hash, p.id_tag_hash) as id_tag_hash,
        s.best_at as start_best_at,
        p.best_at as stop_best_at,
        s.event_at as start_event_at,
        p.event_at as stop_event_at,
        s.received_at as start_received_at,
        p.received_at as stop_received_at,
        s.is_epoch as start_is_epoch,
        p.is_epoch as stop_is_epoch,
        s.meter_register_kwh as meter_start_kwh,
        p.meter_register_kwh as meter_stop_kwh,
        s.register_value_raw as meter_start_raw,
        p.register_value_raw as meter_stop_raw,
        p.stop_reason,
        s.charge_point_id is not null as has_start,
        p.charge_point_id is not null as has_stop,
        coalesce(g.is_restarted_start, false) as is_restarted_start,
        coalesce(p.n_stops, 0) as n_stops,
        false as has_seq_gap,
        coalesce(s.source_file, p.source_file) as first_frame_source_file,
        coalesce(s.record_no, p.record_no) as first_frame_record_no,
        p.received_basis as stop_received_basis,
        coalesce(p.is_inferred, false) as is_id_inferred,
    from first_start_16 as s
    left join start_agg_16 as g on s.charge_point_id = g.charge_point_id and s.tx_key = g.tx_key
    full join (
        select x.*, a.is_inferred
        from stops_16 as x
        left join aliases_16 as a on a.charge_point_id = x.charge_point_id and a.transaction_id = x.transaction_id
        where x.stop_no = 1
    ) as p
        on s.charge_point_id = p.charge_point_id and s.tx_key = p.tx_key
),

-- OCPP 2.0.1: every event names the transaction; seqNo orders them. ---------------------
tx_201 as (
    select
        charge_point_id,
        transaction_id as tx_key,
        arg_min(connector_id, coalesce(seq_no, 0)) filter (where connector_id is not null) as connector_id,
        '2.0.1' as ocpp_version,
        transaction_id,
        [transaction_id] as transaction_ids,
        arg_min(id_tag_hash, coalesce(seq_no, 0)) filter (where id_tag_hash is not null) as id_tag_hash,
        coalesce(
            arg_min(best_at, coalesce(seq_no, 0)) filter (where event_type = 'started'),
            arg_min(best_at, coalesce(seq_no, 0))
        ) as start_best_at,
        arg_min(best_at, coalesce(seq_no, 0)) filter (where event_type = 'ended') as stop_best_at,
        arg_min(event_at, coalesce(seq_no, 0)) filter (where event_type = 'started') as start_event_at,
        arg_min(event_at, coalesce(seq_no, 0)) filter (where event_type = 'ended') as stop_event_at,
        arg_min(received_at, coalesce(seq_no, 0)) filter (where event_type = 'started') as start_received_at,
        arg_min(received_at, coalesce(seq_no, 0)) filter (where event_type = 'ended') as stop_received_at,
        bool_or(is_epoch) filter (where event_type = 'started') as start_is_epoch,
        bool_or(is_epoch) filter (where event_type = 'ended') as stop_is_epoch,
        arg_min(meter_register_kwh, coalesce(seq_no, 0)) filter (where event_type = 'started') as meter_start_kwh,
        arg_min(meter_register_kwh, coalesce(seq_no, 0)) filter (where event_type = 'ended') as meter_stop_kwh,
        arg_min(register_value_raw, coalesce(seq_no, 0)) filter (where event_type = 'started') as meter_start_raw,
        arg_min(register_value_raw, coalesce(seq_no, 0)) filter (where event_type = 'ended') as meter_stop_raw,
        arg_min(stop_reason, coalesce(seq_no, 0)) filter (where event_type = 'ended') as stop_reason,
        bool_or(event_type = 'started') as has_start,
        bool_or(event_type = 'ended') as has_stop,
        coalesce(bool_or(is_offline) filter (where event_type = 'ended'), false) as stop_sent_offline,
        false as is_restarted_start,
        count(*) filter (where event_type = 'ended') as n_stops,
        max(seq_no) - min(seq_no) + 1 <> count(distinct seq_no) as has_seq_gap,
        arg_min(source_file, received_at) as first_frame_source_file,
        arg_min(record_no, received_at) as first_frame_record_no,
        arg_min(received_basis, coalesce(seq_no, 0)) filter (where event_type = 'ended') as stop_received_basis,
        false as is_id_inferred,
    from events
    where ocpp_version = '2.0.1' and transaction_id is not null
    group by charge_point_id, transaction_id
),

-- A stop stamped before its own start (both on a set clock) is proof the charger's clock
-- stepped back between them: queuing delays a stop, it never moves it before the start.
tx as (
    select
        *,
        coalesce(
            not start_is_epoch and not stop_is_epoch and stop_event_at < start_event_at, false
        ) as is_stop_before_start,
    from (
        select * from tx_16
        union all by name
        select * from tx_201
    )
),

-- Meter values of each transaction (1.6 through the ids the CSMS assigned).
samples as (
    select
        m.charge_point_id,
        coalesce(a.tx_key, case when m.ocpp_version = '1.6' then 'stop:' || m.transaction_id else m.transaction_id end)
            as tx_key,
        m.*  exclude (charge_point_id),
    from staging.ocpp_meter_values as m
    left join aliases_16 as a
        on m.ocpp_version = '1.6' and m.charge_point_id = a.charge_point_id and m.transaction_id = a.transaction_id
    where m.transaction_id is not null
),

-- Samples in register order: their stamps, unless the transaction's clock stepped back
-- (is_stop_before_start); then the order they reached the CSMS, and the stamps only within
-- one frame (a StopTransaction's transactionData).
register_candidates as (
    select
        m.charge_point_id, m.tx_key, m.origin, m.value, m.value_raw, m.unit, m.sampled_at, m.received_at,
        m.record_no,
        row_number() over (
            partition by m.charge_point_id, m.tx_key
            order by case when t.is_stop_before_start then m.received_at end, case when t.is_stop_before_start
                then m.record_no end, m.sampled_at, m.received_at, m.record_no
        ) as sample_order,
    from samples as m
    left join tx as t on t.charge_point_id = m.charge_point_id and t.tx_key = m.tx_key
    where m.measurand = 'Energy.Active.Import.Register'
        and m.phase is null
        and coalesce(m.location, 'Outlet') = 'Outlet'
        and m.value is not null
),

-- The unit a register sample was sent in (or the spec's Wh) is trusted unless the
-- transaction's own readings contradict it: a sample that lies outside the range its
-- neighbours allow, while 1000x it (or 1/1000) lies inside, was sent in the other unit.
-- The neighbours are meterStart/meterStop when the charger sent them (a register only
-- rises from start to stop), else the samples before and after it among the transaction's
-- majority (within 100x of their median; at least two of them, or nothing is judged).
-- The number of decimals says nothing: meters send fractional Wh ("70.14" Wh). Where both
-- readings fit (a per-transaction register starting at 0 fits nearly anything), the stream
-- rule below (stream_ends) decides, else the label stands.
register_anchored as (
    select
        c.*,
        case when t.meter_start_kwh >= 0 and (t.meter_stop_kwh is null or t.meter_stop_kwh >= t.meter_start_kwh)
            then t.meter_start_kwh end as anchor_lo,
        case when t.meter_stop_kwh >= 0 and (t.meter_start_kwh is null or t.meter_stop_kwh >= t.meter_start_kwh)
            then t.meter_stop_kwh end as anchor_hi,
    from register_candidates as c
    left join tx as t on c.charge_point_id = t.charge_point_id and c.tx_key = t.tx_key
),

-- Without meterStart/meterStop (the rarer case, so the windows run only there).
register_majority as (
    select
        *,
        median_kwh <= 0 or value between median_kwh / 100 and median_kwh * 100 as is_majority,
    from (
        select *, median(value) over (partition by charge_point_id, tx_key) as median_kwh,
        from register_anchored
        where anchor_lo is null and anchor_hi is null
    )
),

register_unanchored as (
    select
        *,
        max(value) filter (where is_majority) over (
            partition by charge_point_id, tx_key order by sample_order
            rows between unbounded preceding and 1 preceding
        ) as before_kwh,
        min(value) filter (where is_majority) over (
            partition by charge_point_id, tx_key order by sample_order
            rows between 1 following and unbounded following
        ) as after_kwh,
        count(*) filter (where is_majority) over (partition by charge_point_id, tx_key)
            - case when is_majority then 1 else 0 end as n_majority_others,
    from register_majority
),

register_ranges as (
    select
        * exclude (anchor_lo, anchor_hi),
        coalesce(anchor_lo, 0) as range_lo,
        anchor_hi as range_hi,
    from register_anchored
    where anchor_lo is not null or anchor_hi is not null
    union all by name
    select
        * exclude (anchor_lo, anchor_hi, median_kwh, is_majority, before_kwh, after_kwh, n_majority_others),
        case when n_majority_others >= 2 then coalesce(before_kwh, 0) end as range_lo,
        case when n_majority_others >= 2 then after_kwh end as range_hi,
    from register_unanchored
),

register_fits as (
    select
        *,
        range_lo is not null
            and value between range_lo - $unit_slack_kwh and coalesce(range_hi, 'infinity'::double) + $unit_slack_kwh
            as fits_as_sent,
        -- Only the known mix-ups: kWh sent under a Wh label (or none: the spec's Wh), and Wh
        -- under a kWh label. A Wh register far above meterStop is a lifetime register beside
        -- per-transaction meterStart/meterStop, another convention, not another unit.
        range_lo is not null and lower(coalesce(unit, 'Wh')) = 'wh'
            and value * 1000 between range_lo - $unit_slack_kwh and coalesce(range_hi, 'infinity'::double) + $unit_slack_kwh
            as fits_x1000,
        range_lo is not null and lower(unit) = 'kwh'
            and value / 1000 between range_lo - $unit_slack_kwh and coalesce(range_hi, 'infinity'::double) + $unit_slack_kwh
            as fits_div1000,
        origin || ':' || coalesce(unit, '') as stream,
    from register_ranges
),

-- Where both readings fit the range (a per-transaction register from 0: kWh values sent as
-- Wh still lie between 0 and meterStop), the samples of one stream (same message kind and
-- unit label: one firmware encoder) are judged together against the readings around them in
-- register order (meterStart, meterStop, the other streams' samples): the reading that
-- leaves the smaller step into and out of the stream, by at least half, wins; else the label
-- stands. Rare: a Wh stream fits x1000 only while all of it is below meterStop / 1000.
stream_ends as (
    select
        charge_point_id, tx_key, stream,
        min(sample_order) as first_order,
        max(sample_order) as last_order,
        arg_min(value, sample_order) as first_kwh,
        arg_max(value, sample_order) as last_kwh,
    from register_fits
    group by all
    having bool_and(fits_as_sent and fits_x1000)
),

stream_neighbours as (
    select
        g.*,
        coalesce(
            (select arg_max(o.value, o.sample_order) from register_fits as o
             where o.charge_point_id = g.charge_point_id and o.tx_key = g.tx_key and o.stream <> g.stream
                and o.sample_order < g.first_order),
            t.meter_start_kwh
        ) as before_kwh,
        coalesce(
            (select arg_min(o.value, o.sample_order) from register_fits as o
             where o.charge_point_id = g.charge_point_id and o.tx_key = g.tx_key and o.stream <> g.stream
                and o.sample_order > g.last_order),
            t.meter_stop_kwh
        ) as after_kwh,
    from stream_ends as g
    left join tx as t on t.charge_point_id = g.charge_point_id and t.tx_key = g.tx_key
),

stream_units as (
    select
        charge_point_id, tx_key, stream,
        case
            when coalesce(abs(first_kwh * 1000 - before_kwh), 0) + coalesce(abs(after_kwh - last_kwh * 1000), 0)
                < (coalesce(abs(first_kwh - before_kwh), 0) + coalesce(abs(after_kwh - last_kwh), 0)) / 2
                then 1000
            else 1
        end as stream_factor,
    from stream_neighbours
),

register_units as (
    select
        f.*,
        coalesce(u.stream_factor, case
            when f.fits_as_sent then 1
            when f.fits_x1000 then 1000
            when f.fits_div1000 then 0.001
            else 1
        end) as unit_factor,
    from register_fits as f
    left join stream_units as u on u.charge_point_id = f.charge_point_id and u.tx_key = f.tx_key and u.stream = f.stream
),

register_samples as (
    select
        * exclude (unit_factor, range_lo, range_hi, fits_as_sent, fits_x1000, fits_div1000, stream)
            replace (value * unit_factor as value),
        unit_factor <> 1 as is_unit_fixed,
    from register_units
),

sample_ends as (
    select
        charge_point_id,
        tx_key,
        count(*) as n_register_samples,
        bool_and(origin = 'StopTransaction') as only_transaction_data,
        arg_min(value, sample_order) as first_value,
        arg_max(value, sample_order) as last_value,
        arg_min(sampled_at, sample_order) as first_sample_at,
        arg_max(sampled_at, sample_order) as last_sample_at,
        bool_or(is_unit_fixed) as has_unit_fixed_sample,
    from register_samples
    group by all
),

-- meterStart/meterStop join the sampled register as its first and last points, unless the
-- jump to the nearest sample is beyond any charger's power: then the two use different
-- conventions (a per-transaction start beside a lifetime register) and cannot be mixed.
register_points as (
    select charge_point_id, tx_key, value, sample_order, 1 as rank,
    from register_samples
    union all
    select t.charge_point_id, t.tx_key, t.meter_start_kwh, 0, 0,
    from tx as t
    left join sample_ends as e on t.charge_point_id = e.charge_point_id and t.tx_key = e.tx_key
    where t.meter_start_kwh is not null
        and coalesce((e.first_value - t.meter_start_kwh) / greatest(
            abs(date_diff('second', t.start_best_at, e.first_sample_at)) / 3600.0, 1 / 60.0
        ) <= $max_plausible_kw, true)
    union all
    select t.charge_point_id, t.tx_key, t.meter_stop_kwh, 0, 2,
    from tx as t
    left join sample_ends as e on t.charge_point_id = e.charge_point_id and t.tx_key = e.tx_key
    where t.meter_stop_kwh is not null
        and coalesce((t.meter_stop_kwh - e.last_value) / greatest(
            abs(date_diff('second', e.last_sample_at, t.stop_best_at)) / 3600.0, 1 / 60.0
        ) <= $max_plausible_kw, true)
),

register_steps as (
    select
        *,
        value - lag(value) over register_order as delta,
        lag(value) over register_order as previous,
    from register_points
    window register_order as (
        partition by charge_point_id, tx_key order by rank, sample_order
    )
),

register_agg as (
    select
        s.charge_point_id,
        s.tx_key,
        e.n_register_samples,
        e.only_transaction_data,
        e.has_unit_fixed_sample,
        -- A fall to nearer zero than to where it was is a register reset (the meter counted
        -- again from 0): what it shows after the fall was charged after it. A smaller fall
        -- is a rollback and adds nothing.
        sum(case
            when s.delta >= 0 then s.delta
            when s.delta < 0 and s.value < s.previous - s.value then s.value
            else 0
        end) as series_kwh,
        count(*) as n_points,
        -- 1.6 meterStart/meterStop are whole Wh: a fractional register sample ("40330.10")
        -- may stand up to 1 Wh above the meterStop cut from it, which is no fall
        bool_or(s.delta < -0.001) as has_drop,
        bool_or(s.delta < -0.001 and s.value < s.previous - s.value) as has_reset,
    from register_steps as s
    left join sample_ends as e on s.charge_point_id = e.charge_point_id and s.tx_key = e.tx_key
    group by all
),

power_at as (
    select
        charge_point_id,
        tx_key,
        sampled_at,
        coalesce(max(value) filter (where phase is null), sum(value) filter (where phase in ('L1', 'L2', 'L3')))
            as power_kw,
    from samples
    where measurand = 'Power.Active.Import' and value is not null
    group by all
),

sample_agg as (
    select
        s.charge_point_id,
        s.tx_key,
        count(*) as n_meter_samples,
        any_value(s.connector_id) filter (where s.connector_id is not null) as sample_connector_id,
        min(s.sampled_at) filter (where s.sampled_at >= $epoch_before) as first_sampled_at,
        -- queuing only ever adds lag, so the least-delayed live sample shows the clock offset
        min(date_diff('millisecond', s.sampled_at, s.received_at)) filter (
            where s.origin in ('MeterValues', 'TransactionEvent') and s.sampled_at >= $epoch_before
        ) as min_sample_lag_ms,
    from samples as s
    group by all
),

power_agg as (
    select charge_point_id, tx_key, max(power_kw) as max_power_kw,
    from power_at
    group by all
),

measured as (
    select
        t.* replace (coalesce(t.connector_id, sa.sample_connector_id) as connector_id),
        coalesce(sa.n_meter_samples, 0) as n_meter_samples,
        sa.first_sampled_at,
        sa.min_sample_lag_ms,
        pa.max_power_kw,
        coalesce(ra.n_register_samples, 0) as n_register_samples,
        coalesce(ra.n_points, 0) as n_points,
        ra.series_kwh,
        ra.has_drop,
        ra.has_reset,
        ra.only_transaction_data,
        coalesce(ra.has_unit_fixed_sample, false) as has_unit_fixed_sample,
        t.meter_start_kwh is not null and t.meter_stop_kwh is not null
            and t.meter_stop_kwh >= t.meter_start_kwh as register_usable,
        t.meter_start_kwh is not null and t.meter_stop_kwh is not null
            and t.meter_stop_kwh < t.meter_start_kwh as register_negative,
    from tx as t
    left join sample_agg as sa on t.charge_point_id = sa.charge_point_id and t.tx_key = sa.tx_key
    left join power_agg as pa on t.charge_point_id = pa.charge_point_id and t.tx_key = pa.tx_key
    left join register_agg as ra on t.charge_point_id = ra.charge_point_id and t.tx_key = ra.tx_key
),

estimated as (
    select
        *,
        case
            when register_usable then meter_stop_kwh - meter_start_kwh
            when n_points >= 2 then series_kwh
        end as energy_as_labelled_kwh,
        case
            when register_usable then 'register'
            when n_points >= 2 and n_register_samples >= 1 and only_transaction_data then 'transaction_data'
            when n_points >= 2 and n_register_samples >= 1 then 'meter_values'
            when n_points >= 2 then 'register'
            else 'none'
        end as energy_basis,
    from measured
),

timed as (
    select
        *,
        date_diff('millisecond', stop_event_at, stop_received_at) - coalesce(least(
            case when not coalesce(start_is_epoch, true)
                then date_diff('millisecond', start_event_at, start_received_at) end,
            min_sample_lag_ms
        ), 0) as stop_queued_ms,
        coalesce(start_best_at, first_sampled_at) as started_at,
        -- a stop stamped before its start has no charger time to trust: the CSMS receive
        -- time when there is one, else unknown (a bare capture's time is the charger's)
        case
            when not is_stop_before_start then stop_best_at
            when stop_received_basis = 'csms' then stop_received_at
        end as stopped_at,
        date_diff('millisecond', coalesce(start_best_at, first_sampled_at), case
            when not is_stop_before_start then stop_best_at
            when stop_received_basis = 'csms' then stop_received_at
        end) / 3600000.0 as duration_h,
        coalesce(stop_received_basis = 'csms' and not is_stop_before_start, false) as stop_lag_known,
    from estimated
),

unit_checked as (
    select
        *,
        -- kWh sent as Wh makes energy 1000x too small: flagged when the power the charger
        -- reported cannot have delivered so little (a sample in the other unit than its
        -- neighbours is fixed above, in register_units).
        coalesce(
            (energy_as_labelled_kwh > 0 and duration_h > 0.25 and max_power_kw > 1
                and energy_as_labelled_kwh / duration_h < max_power_kw / 100
                and energy_as_labelled_kwh * 1000 / duration_h <= max_power_kw * 1.2),
            false
        ) as unit_too_small,
        coalesce(energy_as_labelled_kwh / nullif(duration_h, 0) > $max_plausible_kw, false) as unit_too_large,
    from timed
)

select
    charge_point_id,
    connector_id,
    ocpp_version,
    transaction_id,
    id_tag_hash,
    started_at,
    stopped_at,
    start_received_at,
    stop_received_at,
    case when unit_too_small then meter_start_kwh * 1000 when unit_too_large then meter_start_kwh / 1000
        else meter_start_kwh end as meter_start_kwh,
    case when unit_too_small then meter_stop_kwh * 1000 when unit_too_large then meter_stop_kwh / 1000
        else meter_stop_kwh end as meter_stop_kwh,
    case when unit_too_small then energy_as_labelled_kwh * 1000 when unit_too_large then energy_as_labelled_kwh / 1000
        else energy_as_labelled_kwh end as energy_kwh,
    energy_basis,
    stop_reason,
    has_start,
    has_stop,
    -- 2.0.1 marks an event that happened offline; one sent the moment the link came back
    -- shows no queueing delay
    coalesce(has_stop and not stop_is_epoch and stop_lag_known and stop_queued_ms > $offline_queue_s * 1000, false)
        or coalesce(stop_sent_offline, false) as stop_from_offline_queue,
    is_restarted_start,
    n_meter_samples,
    max_power_kw,
    list_filter([
        case when has_start and not has_stop then 'start_without_stop' end,
        case when has_stop and not has_start then 'stop_without_start' end,
        case when has_stop and meter_stop_kwh is null then 'meter_stop_missing' end,
        case when has_start and meter_start_kwh is null then 'meter_start_missing' end,
        case when register_negative then 'negative_energy' end,
        case when register_negative or has_drop then 'register_rollback' end,
        case when has_reset and not register_usable then 'register_reset' end,
        case when coalesce(start_is_epoch, false) or coalesce(stop_is_epoch, false) then 'epoch_timestamp' end,
        case when unit_too_small or unit_too_large or has_unit_fixed_sample then 'unit_suspect' end,
        case when n_stops > 1 then 'duplicate_stop' end,
        case when has_seq_gap then 'seq_no_gap' end,
        case when has_stop and energy_basis = 'none' then 'energy_unknown' end,
        case when (has_stop and not stop_is_epoch and stop_lag_known and stop_queued_ms > $offline_queue_s * 1000)
                or coalesce(stop_sent_offline, false)
            then 'stop_from_offline_queue' end,
        case when is_stop_before_start then 'stop_before_start' end,
        case when is_id_inferred then 'transaction_id_inferred' end,
    ], lambda a: a is not null) as anomalies,
    transaction_ids,
    start_event_at,
    stop_event_at,
    energy_as_labelled_kwh,
    first_frame_source_file,
    first_frame_record_no,
    is_stop_before_start,
    -- seconds the stop's stamp lies before the start's (the charger clock's step back)
    case when is_stop_before_start then round(date_diff('millisecond', stop_event_at, start_event_at) / 1000.0, 3)
        end as stop_before_start_s,
from unit_checked
