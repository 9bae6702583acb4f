-- recon.status_timeline: each connector's OCPP status as a timeline of intervals, mapped to
-- the OCPI EVSE status enum, with the Location snapshots published during each interval
-- (counted; agreement is judged only in recon.status_comparison).
-- Times are the CSMS receive clock: the CSMS publishes what it received, so a skewed charger
-- clock must not move the comparison. Unmapped (vendor) statuses become UNKNOWN and stay.
-- Connector 0 (1.6: the whole charger) is kept with no EVSE; it is not compared.
-- Published snapshots come from the temp view _status_published (evse_uid, published_at,
-- status, ...): staging.location_evse_status, or nothing when no locations/ were delivered.
-- also_agrees: published statuses a transitional OCPP status (1.6 Preparing/Finishing) also
-- agrees with. Params: $lenient_keys (VARCHAR[] 'version|status|published'), $map_keys,
--   $map_values (VARCHAR[]: 'version|status' -> OCPI status).
with st as (
    select
        s.charge_point_id,
        s.connector_id,
        s.ocpp_version,
        s.status as ocpp_status,
        s.error_code,
        s.status_at,
        s.received_at,
        s.source_file,
        s.record_no,
        case
            when s.ocpp_version in ('1.6', '2.0.1')
                then list_extract($map_values, list_position($map_keys, s.ocpp_version || '|' || s.status))
            else coalesce(
                list_extract($map_values, list_position($map_keys, '1.6|' || s.status)),
                list_extract($map_values, list_position($map_keys, '2.0.1|' || s.status))
            )
        end as mapped
    from staging.ocpp_status as s
    where s.received_at is not null
),

iv as (
    select
        st.* exclude (mapped),
        coalesce(st.mapped, 'UNKNOWN') as ocpi_status,
        st.mapped is null as is_unmapped,
        list_transform(
            list_filter($lenient_keys, lambda k: starts_with(k, coalesce(st.ocpp_version, '1.6') || '|' || st.ocpp_status || '|')),
            lambda k: split_part(k, '|', 3)
        ) as also_agrees,
        st.received_at as valid_from_at,
        lead(st.received_at) over (
            partition by st.charge_point_id, st.connector_id order by st.received_at, st.source_file, st.record_no
        ) as valid_to_at,
        row_number() over (
            partition by st.charge_point_id, st.connector_id order by st.received_at, st.source_file, st.record_no
        ) as seq
    from st
),

located as (
    select
        iv.*,
        e.evse_uid,
        e.evse_id,
        e.location_id,
        e.site_id,
        si.site_type
    from iv
    left join staging.evses as e
        on e.charge_point_id = iv.charge_point_id and e.connector_id = iv.connector_id and iv.connector_id > 0
    left join staging.sites as si on si.site_id = e.site_id
),

snap as (
    -- snapshots published during each OCPP interval (counted, not judged: whether the map
    -- agreed is recon.status_comparison's one definition)
    select
        p.status as published_status,
        l.charge_point_id,
        l.connector_id,
        l.seq
    from _status_published as p
    asof join located as l
        on l.evse_uid = p.evse_uid and p.published_at >= l.valid_from_at
),

per_interval as (
    select
        charge_point_id,
        connector_id,
        seq,
        count(*) as n_snapshots,
        list(distinct published_status order by published_status) as published_statuses
    from snap
    group by all
)

select
    l.site_id,
    l.site_type,
    l.location_id,
    l.evse_uid,
    l.evse_id,
    l.charge_point_id,
    l.connector_id,
    l.seq,
    l.ocpp_version,
    l.ocpp_status,
    l.error_code,
    l.ocpi_status,
    l.is_unmapped,
    l.also_agrees,
    l.valid_from_at,
    l.valid_to_at,
    epoch(l.valid_to_at) - epoch(l.valid_from_at) as duration_s,
    l.status_at,
    coalesce(p.n_snapshots, 0) as n_snapshots,
    coalesce(p.published_statuses, []::varchar[]) as published_statuses,
    l.source_file,
    l.record_no
from located as l
left join per_interval as p using (charge_point_id, connector_id, seq)
