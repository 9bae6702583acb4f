-- recon.status_published: each published EVSE's status on the map as a step function. A
-- status holds from the instant the map could show it (published_at: a full-Location push,
-- an EVSE PATCH, or a pulled listing) until the next snapshot of that EVSE, whatever its
-- kind: a push lost on the way leaves the previous status in force, which no single
-- snapshot shows. status_since_at is when the map started showing the status (the first
-- of a run of snapshots with the same status). Input: the temp view _status_published
-- (staging.location_evse_status, or nothing when no locations/ were delivered).
-- Snapshots at the same instant as another of the EVSE are superseded (not counted here;
-- staging keeps them all).
with latest_at_instant as (
    -- several snapshots of one EVSE at one instant (stamps are whole seconds; two pushes in
    -- one second): the one with the newest EVSE change, then the last in the files, holds
    select p.*
    from _status_published as p
    where p.evse_uid is not null and p.published_at is not null
    qualify row_number() over (
        partition by p.evse_uid, p.published_at order by p.snapshot_at desc, p.source_file desc, p.record_no desc
    ) = 1
),

snap as (
    select
        p.*,
        row_number() over (partition by p.evse_uid order by p.published_at) as seq
    from latest_at_instant as p
),

runs as (
    select
        *,
        lead(published_at) over w as next_published_at,
        sum(case when status is distinct from prev_status then 1 else 0 end) over (
            partition by evse_uid order by seq rows between unbounded preceding and current row
        ) as run_no
    from (select *, lag(status) over (partition by evse_uid order by seq) as prev_status from snap)
    window w as (partition by evse_uid order by seq)
)

select
    evse_uid,
    location_id,
    seq,
    status,
    published_at as published_from_at,
    next_published_at as published_to_at,
    min(published_at) over (partition by evse_uid, run_no) as status_since_at,
    snapshot_at,
    snapshot_kind,
    source_file,
    record_no
from runs
