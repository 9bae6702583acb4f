-- recon.status_comparison: the ONE definition of "the published EVSE status agrees with
-- OCPP", on timelines. Both sides are step functions: the OCPP status (recon.status_timeline,
-- CSMS receive clock) and the map's status (recon.status_published). The time of each EVSE
-- is cut at every change of either side and of the connector's transaction, so each piece
-- [from_at, to_at) has one OCPP status, one published status and one transaction state, and
-- is judged once (agrees: true, false, or null = not comparable). status_mismatch forms its
-- episodes from these pieces; analysts sum them (disagreeing seconds per EVSE or interval).
-- Rules:
--  - not comparable: no snapshot yet, published PLANNED/REMOVED/UNKNOWN ($not_comparable),
--    OCPP status outside the mapping (UNKNOWN); OCPP "charging" while the connector's
--    transaction was never stopped or only stopped from the offline queue (the CSMS could
--    not know; incomplete_session's case; the offline window widened by $clock_margin_s for a
--    skewed stop time); OCPP "available" while a transaction on the connector still runs (a
--    stale or late StatusNotification, contradicted by the transaction itself).
--  - agrees: equal, an equivalent pair ($equivalent_pairs), a transitional status shown
--    either way (also_agrees), or OCPP "charging" with no transaction running (cable in
--    before the start or after the stop, 2.0.1 Occupied) shown as AVAILABLE/BLOCKED.
--  - grace: a piece also agrees when OCPP $grace_s later agrees: publish and receive stamps
--    come from different processes, and a map cannot really lead the charger.
-- Inputs: temp views _status_tx (lineage.transactions or nothing) and _status_horizon
-- (end_at: the end of the data; the last statuses hold until then).
with tl as (
    select *
    from recon.status_timeline
    where evse_uid is not null
),

tx as (
    select
        t.charge_point_id, t.connector_id, t.transaction_id, t.start_received_at, t.stopped_at,
        t.stop_received_at, coalesce(t.has_stop, false) as has_stop,
        coalesce(t.stop_from_offline_queue, false) as stop_from_offline_queue
    from _status_tx as t
    where t.start_received_at is not null
),

evse as (
    select distinct evse_uid, charge_point_id, connector_id, site_id, site_type, location_id
    from tl
),

points as (
    -- every instant where a side changes, and $grace_s before each OCPP-side change (the
    -- second probe of a piece looks that far ahead)
    select evse_uid, valid_from_at - to_seconds(k * $grace_s) as at_
    from tl, (values (0), (1)) as ks(k)
    union
    select evse_uid, published_from_at
    from recon.status_published
    union
    select e.evse_uid, unnest([
        t.start_received_at, t.stopped_at, t.stop_received_at, t.stopped_at - to_seconds($clock_margin_s)
    ]) - to_seconds(k * $grace_s)
    from tx as t
    join evse as e using (charge_point_id, connector_id), (values (0), (1)) as ks(k)
),

pieces as (
    select
        p.evse_uid,
        p.at_ as from_at,
        coalesce(lead(p.at_) over (partition by p.evse_uid order by p.at_), h.end_at) as to_at,
        h.end_at as data_end_at
    from (select distinct evse_uid, at_ from points where at_ is not null) as p, _status_horizon as h
    where p.at_ < h.end_at
    qualify from_at < to_at
),

probe as (
    select pc.*, e.charge_point_id, e.connector_id, k, pc.from_at + to_seconds(k * $grace_s) as probe_at
    from pieces as pc
    join evse as e using (evse_uid), (values (0), (1)) as ks(k)
),

seen as (
    select
        pr.*,
        tl.seq as ocpp_seq, tl.ocpp_version, tl.ocpp_status, tl.error_code, tl.ocpi_status, tl.also_agrees,
        tl.valid_from_at as ocpp_since_at, tl.source_file || ':' || tl.record_no as ocpp_frame
    from probe as pr
    asof left join tl on tl.evse_uid = pr.evse_uid and pr.probe_at >= tl.valid_from_at
),

with_map as (
    select
        s.*,
        pub.seq as published_seq, pub.status as published_status, pub.published_from_at,
        pub.status_since_at as published_since_at, pub.snapshot_kind as published_kind,
        pub.source_file || ':' || pub.record_no as published_snapshot
    from seen as s
    asof left join recon.status_published as pub on pub.evse_uid = s.evse_uid and s.from_at >= pub.published_from_at
),

judged as (
    select
        m.*,
        tx.transaction_id,
        case
            when m.published_status is null or list_contains($not_comparable, m.published_status)
                or m.ocpi_status is null or m.ocpi_status = 'UNKNOWN' then null
            when m.ocpi_status = 'CHARGING' and tx.transaction_id is not null and (
                not tx.has_stop
                or (tx.stop_from_offline_queue
                    and m.probe_at >= tx.stopped_at - to_seconds($clock_margin_s)
                    and m.probe_at < tx.stop_received_at)
            ) then null
            when m.ocpi_status = 'AVAILABLE' and tx.transaction_id is not null
                and m.probe_at < coalesce(tx.stopped_at, 'infinity'::timestamptz)
                and m.probe_at < coalesce(tx.stop_received_at, 'infinity'::timestamptz) then null
            else m.published_status = m.ocpi_status
                or list_contains($equivalent_pairs, m.published_status || '|' || m.ocpi_status)
                or list_contains(m.also_agrees, m.published_status)
                or (m.ocpi_status = 'CHARGING' and m.published_status in ('AVAILABLE', 'BLOCKED') and (
                    tx.transaction_id is null
                    or m.probe_at >= least(tx.stopped_at, tx.stop_received_at)
                ))
        end as agrees
    from with_map as m
    asof left join tx
        on tx.charge_point_id = m.charge_point_id and tx.connector_id = m.connector_id
        and m.probe_at >= tx.start_received_at
)

select
    e.site_id,
    e.site_type,
    e.location_id,
    j.evse_uid,
    j.charge_point_id,
    j.connector_id,
    j.from_at,
    j.to_at,
    epoch(j.to_at) - epoch(j.from_at) as duration_s,
    j.data_end_at,
    arg_min(j.published_status, j.k) as published_status,
    arg_min(j.published_since_at, j.k) as published_since_at,
    arg_min(j.published_from_at, j.k) as published_from_at,
    arg_min(j.published_kind, j.k) as published_kind,
    arg_min(j.published_snapshot, j.k) as published_snapshot,
    arg_min(j.published_seq, j.k) as published_seq,
    arg_min(j.ocpp_seq, j.k) as ocpp_seq,
    arg_min(j.ocpp_version, j.k) as ocpp_version,
    arg_min(j.ocpp_status, j.k) as ocpp_status,
    arg_min(j.error_code, j.k) as error_code,
    arg_min(j.ocpi_status, j.k) as ocpi_status,
    arg_min(j.ocpp_since_at, j.k) as ocpp_since_at,
    arg_min(j.ocpp_frame, j.k) as ocpp_frame,
    arg_min(j.transaction_id, j.k) as transaction_id,
    -- agrees now or $grace_s later: true; either not comparable: null; else false
    case when bool_or(j.agrees) then true when bool_or(j.agrees is null) then null else false end as agrees
from judged as j
join evse as e using (evse_uid)
group by all
