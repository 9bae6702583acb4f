-- EVSE status episodes where the published OCPI status disagreed with OCPP for more than
-- $tolerance_s. A Location snapshot is an observation at snapshot_at, so disagreement is judged
-- at snapshot instants against the OCPP status in force then (recon.status_timeline, CSMS
-- receive clock). An episode is a run of disagreeing snapshots of one EVSE; it started at the
-- OCPP change the map failed to follow (or, when the map changed instead, at its first
-- disagreeing snapshot), and
-- it is reported when its last disagreeing snapshot is more than $tolerance_s after that start
-- (a map a few minutes behind OCPP is publication latency, not an error).
-- Not compared: OCPP statuses outside the mapping (UNKNOWN), published PLANNED/REMOVED/UNKNOWN,
-- OCPP "charging" while the connector's transaction was only finished from the offline queue
-- or never stopped (the CSMS could not know the status then: incomplete_session's case), and
-- OCPP "available" while a transaction on the connector was still running. OCPP "charging"
-- with no transaction running (a cable plugged in before the start or after the stop) agrees
-- with a published AVAILABLE or BLOCKED.
-- Params: $equivalent_pairs, $not_comparable (pipeline.models.status_map). $clock_margin_s widens that offline window for a skewed charger stop time.
with tl as (
    select *
    from recon.status_timeline
    where evse_uid is not null
),

probe as (
    -- each snapshot is judged at its instant and $grace_s later: the publisher's stamp and the
    -- CSMS receive stamp are different processes, and a map cannot really lead OCPP
    select p.evse_uid, p.location_id, p.snapshot_at, p.status, k,
        p.snapshot_at + to_seconds(k * $grace_s) as probe_at
    from staging.location_evse_status as p, (values (0), (1)) as ks(k)
),

snap as (
    select
        p.evse_uid,
        p.location_id,
        p.snapshot_at,
        p.k,
        p.probe_at,
        p.status as published_status,
        tl.site_id, tl.site_type, tl.charge_point_id, tl.connector_id, tl.ocpp_version, tl.ocpp_status,
        tl.error_code, tl.ocpi_status, tl.also_agrees, tl.valid_from_at as ocpp_since_at,
        tl.source_file, tl.record_no
    from probe as p
    asof join tl on tl.evse_uid = p.evse_uid and p.probe_at >= tl.valid_from_at
),

tx as (
    select charge_point_id, connector_id, transaction_id, start_received_at, stopped_at, stop_received_at,
        has_stop, stop_from_offline_queue
    from lineage.transactions
    where start_received_at is not null
),

judged as (
    select
        s.*,
        case
            when s.published_status is null or list_contains($not_comparable, s.published_status)
                or s.ocpi_status = 'UNKNOWN' then null
            when s.ocpi_status = 'CHARGING' and tx.transaction_id is not null and (
                not coalesce(tx.has_stop, false)
                or (tx.stop_from_offline_queue
                    and s.probe_at >= tx.stopped_at - to_seconds($clock_margin_s)
                    and s.probe_at < tx.stop_received_at)
            ) then null
            -- "available" while the connector's transaction is still running is a stale or
            -- late-delivered StatusNotification, contradicted by the transaction itself
            when s.ocpi_status = 'AVAILABLE' and tx.transaction_id is not null
                and s.probe_at < coalesce(tx.stopped_at, 'infinity'::timestamptz)
                and s.probe_at < coalesce(tx.stop_received_at, 'infinity'::timestamptz) then null
            else s.published_status = s.ocpi_status
                or list_contains($equivalent_pairs, s.published_status || '|' || s.ocpi_status)
                or list_contains(s.also_agrees, s.published_status)
                -- occupied with no transaction running (cable in before the start or after the
                -- stop, as 1.6 Preparing/Finishing; 2.0.1 has only Occupied for it)
                or (s.ocpi_status = 'CHARGING' and s.published_status in ('AVAILABLE', 'BLOCKED') and (
                    tx.transaction_id is null
                    or s.probe_at >= least(tx.stopped_at, tx.stop_received_at)
                ))
        end as agrees
    from snap as s
    asof left join tx
        on tx.charge_point_id = s.charge_point_id and tx.connector_id = s.connector_id
        and s.probe_at >= tx.start_received_at
),

judged_snapshot as (
    -- a snapshot disagrees only when it disagrees at both probes
    select
        evse_uid, snapshot_at,
        arg_min(location_id, k) as location_id, arg_min(published_status, k) as published_status,
        arg_min(site_id, k) as site_id, arg_min(site_type, k) as site_type,
        arg_min(charge_point_id, k) as charge_point_id, arg_min(connector_id, k) as connector_id,
        arg_min(ocpp_status, k) as ocpp_status, arg_min(error_code, k) as error_code,
        arg_min(ocpi_status, k) as ocpi_status, arg_min(ocpp_since_at, k) as ocpp_since_at,
        arg_min(source_file, k) as source_file, arg_min(record_no, k) as record_no,
        case when bool_or(agrees) then true when bool_or(agrees is null) then null else false end as agrees
    from judged
    group by evse_uid, snapshot_at
),

neighbours as (
    select
        *,
        lag(snapshot_at) over w as prev_snapshot_at,
        lead(snapshot_at) over w as next_snapshot_at,
        lag(ocpi_status) over w as prev_ocpi_status,
        lag(published_status) over w as prev_published_status,
    from judged_snapshot
    window w as (partition by evse_uid order by snapshot_at)
),

runs as (
    select
        *,
        -- a new episode at every snapshot that is not a disagreement, and where the
        -- disagreement itself changed (the charger or the map moved on between two
        -- snapshots): two unrelated disagreements are not one long outage
        sum(case
            when agrees is distinct from false then 1
            when prev_ocpi_status is distinct from ocpi_status
                or prev_published_status is distinct from published_status then 1
            else 0
        end) over (
            partition by evse_uid order by snapshot_at rows between unbounded preceding and current row
        ) as grp
    from neighbours
),

episodes as (
    select
        evse_uid,
        grp,
        -- the OCPP change the map failed to follow, unless the snapshot before already saw that
        -- OCPP status (then the map changed, at an unknown time: count from the first snapshot)
        arg_min(
            case when prev_snapshot_at is null or ocpp_since_at > prev_snapshot_at then ocpp_since_at else snapshot_at end,
            snapshot_at
        ) as started_at,
        min(snapshot_at) as first_snapshot_at,
        max(snapshot_at) as last_snapshot_at,
        count(*) as n_snapshots,
        any_value(site_id) as site_id,
        any_value(site_type) as site_type,
        any_value(location_id) as location_id,
        any_value(charge_point_id) as charge_point_id,
        any_value(connector_id) as connector_id,
        list(distinct ocpp_status order by ocpp_status) as ocpp_statuses,
        list(distinct ocpi_status order by ocpi_status) as ocpp_as_ocpi,
        list(distinct published_status order by published_status) as published_statuses,
        list(distinct error_code order by error_code) filter (where error_code is not null and error_code <> 'NoError')
            as error_codes,
        arg_min(source_file || ':' || record_no, snapshot_at) as first_status_frame,
        -- the first snapshot after the episode (it agreed or was not comparable)
        arg_max(next_snapshot_at, snapshot_at) as next_snapshot_at
    from runs
    where agrees = false
    group by evse_uid, grp
)

select
    null::varchar as session_key,
    site_id,
    site_type,
    charge_point_id,
    evse_uid,
    null::varchar as ocpp_transaction_id,
    null::varchar as backend_session_id,
    null::varchar as cdr_id,
    started_at as interval_start,
    0 as money_at_risk,
    null::varchar as currency,
    json_object(
        'ocpp_statuses', ocpp_statuses,
        'ocpp_as_ocpi_status', ocpp_as_ocpi,
        'ocpp_error_codes', error_codes,
        'published_statuses', published_statuses,
        'disagreement_started_at', started_at,
        'first_disagreeing_snapshot_at', first_snapshot_at,
        'last_disagreeing_snapshot_at', last_snapshot_at,
        'next_snapshot_at', next_snapshot_at,
        'disagreeing_snapshots', n_snapshots,
        'disagreement_at_least_s', round(epoch(last_snapshot_at) - epoch(started_at)),
        'tolerance_s', $tolerance_s,
        'location_id', location_id,
        'connector_id', connector_id,
        'first_status_frame', first_status_frame,
        'sources', 'ocpp: StatusNotification (CSMS receive time) mapped to OCPI status (recon.status_timeline); published: OCPI Location snapshots (staging.location_evse_status)'
    ) as evidence,
    format(
        '{}: from {} the charger reported {} ({}) but the public map showed {} for at least {} min, {}.',
        evse_uid,
        strftime(started_at, '%Y-%m-%d %H:%M UTC'),
        array_to_string(ocpp_statuses, '/'),
        array_to_string(ocpp_as_ocpi, '/'),
        array_to_string(published_statuses, '/'),
        round((epoch(last_snapshot_at) - epoch(started_at)) / 60)::bigint,
        case
            when list_contains(published_statuses, 'AVAILABLE') and list_contains(ocpp_as_ocpi, 'OUTOFORDER')
                then 'so drivers were sent to a faulted charger'
            when list_contains(published_statuses, 'AVAILABLE') and list_contains(ocpp_as_ocpi, 'CHARGING')
                then 'so drivers were sent to a charger already in use'
            when list_contains(published_statuses, 'AVAILABLE')
                then 'so drivers were sent to a charger they could not use'
            else 'so roaming partners showed the wrong status'
        end
    ) as explanation
from episodes
where epoch(last_snapshot_at) - epoch(started_at) > $tolerance_s
