-- EVSE status episodes where the public map disagreed with OCPP for more than $tolerance_s.
-- Both are timelines (recon.status_comparison: the map's status holds from each snapshot,
-- push, PATCH or pull, until the next; OCPP's from each StatusNotification received), judged
-- piece by piece by the one definition there. An episode is a run of disagreeing pieces of
-- one EVSE with the same OCPP status (as OCPI) and the same published status: where either
-- side moves to another disagreement, a new episode starts (two unrelated disagreements are
-- not one outage); an agreeing or not comparable piece ends it. Reported when it lasted more
-- than $tolerance_s: a map a few minutes behind OCPP is publication lag, not an error. A lost
-- push shows here although no snapshot ever carries a wrong status: the map kept the old one.
with pieces as (
    select
        *,
        lag(ocpi_status) over w as prev_ocpi_status,
        lag(published_status) over w as prev_published_status,
        lag(agrees) over w as prev_agrees,
        lag(to_at) over w as prev_to_at
    from recon.status_comparison
    window w as (partition by evse_uid order by from_at)
),

runs as (
    select
        *,
        sum(case
            when agrees is distinct from false then 1
            when prev_agrees is distinct from false or prev_to_at is distinct from from_at
                or prev_ocpi_status is distinct from ocpi_status
                or prev_published_status is distinct from published_status then 1
            else 0
        end) over (
            partition by evse_uid order by from_at rows between unbounded preceding and current row
        ) as grp
    from pieces
),

episodes as (
    select
        evse_uid,
        grp,
        min(from_at) as started_at,
        max(to_at) as ended_at,
        sum(duration_s) as overlap_s,
        any_value(data_end_at) as data_end_at,
        any_value(site_id) as site_id,
        any_value(site_type) as site_type,
        any_value(location_id) as location_id,
        any_value(charge_point_id) as charge_point_id,
        any_value(connector_id) as connector_id,
        any_value(ocpi_status) as ocpp_as_ocpi,
        any_value(published_status) as published_status,
        arg_min(published_since_at, from_at) as published_since_at,
        arg_min(published_kind, from_at) as published_kind,
        arg_min(published_snapshot, from_at) as published_snapshot,
        arg_min(published_from_at, from_at) as published_snapshot_at,
        min(published_seq) as first_published_seq,
        max(published_seq) as last_published_seq,
        list(distinct ocpp_status order by ocpp_status) as ocpp_statuses,
        arg_min(ocpp_since_at, from_at) as ocpp_since_at,
        arg_min(ocpp_frame, from_at) as first_status_frame,
        list(distinct error_code order by error_code) filter (where error_code is not null and error_code <> 'NoError')
            as error_codes
    from runs
    where agrees = false
    group by evse_uid, grp
),

bounded as (
    -- the snapshot after the episode's last one (it may have corrected the map) and how the
    -- episode ended: the map moved, OCPP moved, or the data ended
    select
        ep.*,
        nx.published_from_at as next_snapshot_at,
        nx.snapshot_kind as next_snapshot_kind,
        nx.status as next_snapshot_status,
        nx.source_file || ':' || nx.record_no as next_snapshot,
        case
            when ep.ended_at >= ep.data_end_at then 'end of data'
            when nx.published_from_at = ep.ended_at then 'map changed'
            else 'charger changed'
        end as ended_by
    from episodes as ep
    left join recon.status_published as nx
        on nx.evse_uid = ep.evse_uid and nx.seq = ep.last_published_seq + 1
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
        'published_status', published_status,
        'published_since_at', published_since_at,
        'published_snapshot', published_snapshot,
        'published_snapshot_kind', published_kind,
        'published_snapshot_at', published_snapshot_at,
        'snapshots_during', last_published_seq - first_published_seq,
        'next_snapshot_at', next_snapshot_at,
        'next_snapshot_kind', next_snapshot_kind,
        'next_snapshot_status', next_snapshot_status,
        'next_snapshot', next_snapshot,
        'ocpp_statuses', ocpp_statuses,
        'ocpp_as_ocpi_status', ocpp_as_ocpi,
        'ocpp_since_at', ocpp_since_at,
        'ocpp_error_codes', error_codes,
        'first_status_frame', first_status_frame,
        'disagreement_started_at', started_at,
        'disagreement_ended_at', ended_at,
        'ended_by', ended_by,
        'overlap_s', round(overlap_s),
        'tolerance_s', $tolerance_s,
        'location_id', location_id,
        'connector_id', connector_id,
        'sources', 'ocpp: StatusNotification (CSMS receive time) mapped to OCPI status (recon.status_timeline); published: OCPI Location pushes, EVSE PATCHes and pulls as a step function (recon.status_published); judged in recon.status_comparison'
    ) as evidence,
    format(
        '{}: from {} the charger reported {} ({}) but the public map still showed {} (published {} by {}) for {} min, {}; {}.',
        evse_uid,
        strftime(started_at, '%Y-%m-%d %H:%M UTC'),
        array_to_string(ocpp_statuses, '/'),
        ocpp_as_ocpi,
        published_status,
        strftime(published_since_at, '%Y-%m-%d %H:%M UTC'),
        case published_kind when 'pull' then 'a pull' when 'evse_patch' then 'an EVSE PATCH' else 'a Location push' end,
        round(overlap_s / 60)::bigint,
        case
            when published_status = 'AVAILABLE' and ocpp_as_ocpi = 'OUTOFORDER'
                then 'so drivers were sent to a faulted charger'
            when published_status = 'AVAILABLE' and ocpp_as_ocpi = 'CHARGING'
                then 'so drivers were sent to a charger already in use'
            when published_status = 'AVAILABLE'
                then 'so drivers were sent to a charger they could not use'
            when ocpp_as_ocpi = 'AVAILABLE'
                then 'so drivers were kept away from a free charger'
            else 'so roaming partners showed the wrong status'
        end,
        case
            when ended_by = 'end of data' then 'it still did at the end of the data'
            when ended_by = 'map changed' and last_published_seq > first_published_seq then format(
                'the map repeated it in {} later snapshot(s) (the publisher''s state was stale) until the {} of {}',
                last_published_seq - first_published_seq,
                case next_snapshot_kind when 'pull' then 'pull' when 'evse_patch' then 'EVSE PATCH' else 'Location push' end,
                strftime(next_snapshot_at, '%H:%M UTC'))
            when ended_by = 'map changed' then format(
                'no snapshot carried the change (a lost push) until the {} of {}',
                case next_snapshot_kind when 'pull' then 'pull' when 'evse_patch' then 'EVSE PATCH' else 'Location push' end,
                strftime(next_snapshot_at, '%H:%M UTC'))
            else format('until the charger reported another status at {}', strftime(ended_at, '%H:%M UTC'))
        end
    ) as explanation
from bounded
where overlap_s > $tolerance_s
