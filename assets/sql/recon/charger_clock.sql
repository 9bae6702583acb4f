-- One row per charger: how far its own clock runs from the CSMS receive clock.
-- Reads the temp view _clock_samples(charge_point_id, event_at, received_at, kind,
-- receive_known), one row per charger-sent frame whose payload time is the moment it was
-- sent (assets/clock.py); receive_known is false for a bare capture, whose receive time is
-- estimated from those very stamps: such frames are counted and ignored.
-- And _clock_steps(charge_point_id, transaction_id, stop_before_start_s): transactions
-- whose stop the charger stamped before their own start. No queuing does that (it only
-- makes stamps earlier than their sending, never a stop earlier than its start): the
-- clock stepped back, which needs no CSMS clock to see.
-- Robust in two steps: the densest $bin_s bin of offsets is the live clock; samples farther
-- than $offline_s from it are offline-queued frames (sent late, stamped when they happened).
-- Fewer than $min_samples frames are enough when every one is stamped after it arrived:
-- queuing only ever makes a stamp earlier, so a stamp from the future is the clock.
with samples as (
    select
        charge_point_id,
        kind,
        event_at,
        received_at,
        epoch(event_at) - epoch(received_at) as offset_s,
        event_at < timestamptz '2000-01-01 00:00:00+00' as is_epoch,
        receive_known
    from _clock_samples
    where event_at is not null and received_at is not null
),

live as (
    select * from samples where not is_epoch and receive_known
),

bins as (
    select charge_point_id, round(offset_s / $bin_s) as bin, count(*) as n
    from live
    group by all
),

mode_bin as (
    select charge_point_id, bin * $bin_s as mode_offset_s
    from bins
    qualify row_number() over (partition by charge_point_id order by n desc, abs(bin)) = 1
),

classified as (
    select
        l.*,
        abs(l.offset_s - m.mode_offset_s) > $offline_s as is_offline
    from live as l
    inner join mode_bin as m using (charge_point_id)
),

estimates as (
    select
        charge_point_id,
        count(*) filter (where not is_offline) as n_used,
        count(*) filter (where is_offline) as n_offline_ignored,
        median(offset_s) filter (where not is_offline) as skew_s,
        min(offset_s) filter (where not is_offline) as min_offset_s,
        quantile_cont(offset_s, 0.25) filter (where not is_offline) as skew_p25_s,
        quantile_cont(offset_s, 0.75) filter (where not is_offline) as skew_p75_s,
        min(received_at) as first_received_at,
        max(received_at) as last_received_at
    from classified
    group by all
),

counts as (
    select
        charge_point_id,
        count(*) as n_frames,
        count(*) filter (where is_epoch and receive_known) as n_epoch_ignored,
        count(*) filter (where not receive_known) as n_receive_unknown_ignored
    from samples
    group by all
),

steps as (
    select
        charge_point_id,
        count(*) as n_stops_before_start,
        max(stop_before_start_s) as max_stop_before_start_s,
        list(transaction_id order by stop_before_start_s desc) as stop_before_start_transactions
    from _clock_steps
    group by all
),

chargers as (
    select charge_point_id from counts
    union
    select charge_point_id from steps
),

charger_site as (
    select e.charge_point_id, min(e.site_id) as site_id
    from staging.evses as e
    group by all
)

select
    ch.charge_point_id,
    cs.site_id,
    st.site_type,
    coalesce(c.n_frames, 0) as n_frames,
    coalesce(e.n_used, 0) as n_used,
    coalesce(e.n_offline_ignored, 0) as n_offline_ignored,
    coalesce(c.n_epoch_ignored, 0) as n_epoch_ignored,
    coalesce(c.n_receive_unknown_ignored, 0) as n_receive_unknown_ignored,
    round(e.skew_s, 3) as skew_s,
    round(e.skew_p25_s, 3) as skew_p25_s,
    round(e.skew_p75_s, 3) as skew_p75_s,
    e.first_received_at,
    e.last_received_at,
    round(e.min_offset_s, 3) as min_offset_s,
    coalesce(e.n_used >= $min_samples or e.min_offset_s > $tolerance_s, false) as is_reliable,
    coalesce((e.n_used >= $min_samples or e.min_offset_s > $tolerance_s) and abs(e.skew_s) > $tolerance_s, false)
        as is_skewed,
    coalesce(sp.n_stops_before_start, 0) as n_stops_before_start,
    sp.max_stop_before_start_s,
    sp.stop_before_start_transactions,
    -- a step back within the skew tolerance is jitter between two stamps, not a clock fault
    coalesce(sp.max_stop_before_start_s > $tolerance_s, false) as has_clock_step
from chargers as ch
left join counts as c using (charge_point_id)
left join estimates as e using (charge_point_id)
left join steps as sp using (charge_point_id)
left join charger_site as cs using (charge_point_id)
left join staging.sites as st on st.site_id = cs.site_id
