-- lineage.candidates_ocpp_backend: OCPP transaction x backend session pairs worth scoring.
-- Exact: same transaction id on the same charger. Fuzzy: same connector and start within
-- $window_s, found by an equi-join on (charger, connector, time bucket) with the OCPP side
-- spread over the neighbouring buckets, so the join never degenerates into a cross join.
with o as (
    select
        *,
        cast(floor(epoch(match_at) / $window_s) as bigint) as bucket,
    from lineage.match_ocpp
),

b as (
    select
        *,
        cast(floor(epoch(match_at) / $window_s) as bigint) as bucket,
    from lineage.match_backend
),

exact as (
    select
        o.ocpp_ref as left_id,
        b.session_id as right_id,
        'exact_transaction_id' as exact_rule,
    from o
    inner join b on b.charge_point_id = o.charge_point_id and b.transaction_id = o.transaction_id
),

o_spread as (
    select
        ocpp_ref,
        charge_point_id,
        connector_id,
        unnest([bucket - 1, bucket, bucket + 1]) as bucket,
    from o
    where bucket is not null
),

fuzzy as (
    select
        os.ocpp_ref as left_id,
        b.session_id as right_id,
        cast(null as varchar) as exact_rule,
    from o_spread as os
    inner join b
        on b.charge_point_id = os.charge_point_id
        and b.connector_id = os.connector_id
        and b.bucket = os.bucket
),

pairs as (
    select
        left_id,
        right_id,
        max(exact_rule) as exact_rule,
    from (select * from exact union all select * from fuzzy) as u
    group by left_id, right_id
),

features as (
    select
        p.left_id,
        p.right_id,
        p.exact_rule,
        -- On the CSMS clock (match_ocpp): a skewed charger clock does not push pairs apart.
        abs(epoch(b.started_at) - epoch(o.started_csms_at)) as start_diff_s,
        abs(epoch(b.stopped_at) - epoch(o.stopped_csms_at)) as stop_diff_s,
        o.energy_kwh as energy_left_kwh,
        b.energy_kwh as energy_right_kwh,
        o.token_hash = b.token_hash as token_match,
        cast(0 as integer) as prefer,
    from pairs as p
    inner join o on o.ocpp_ref = p.left_id
    inner join b on b.session_id = p.right_id
)

select *
from features
where exact_rule is not null or start_diff_s <= $window_s
