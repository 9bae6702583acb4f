-- staging.ocpp_calls: every CALL with the answer the other side sent to it.
-- An answer belongs to the first CALL before it with the same (charger, message id) from
-- the other direction: message ids restart when a charger reboots, so the id alone is
-- not unique over a day. Retransmitted CALLs stay (flagged) and meet the same answer.
with frames as (
    select * from staging.ocpp_frames
),

calls as (
    select
        *,
        case direction when 'in' then 'out' else 'in' end as answer_direction,
    from frames
    where msg_type = 2
),

answers as (
    select
        charge_point_id,
        msg_id,
        direction,
        received_at,
        msg_type,
        payload,
        error_code,
        error_description,
    from frames
    where msg_type in (3, 4) and not is_retransmit
)

select
    c.charge_point_id,
    c.msg_id,
    c.action,
    c.direction,
    c.ocpp_version,
    c.received_at as call_at,
    a.received_at as answer_at,
    case a.msg_type when 3 then 'result' when 4 then 'error' end as answer_type,
    date_diff('millisecond', c.received_at, a.received_at) as latency_ms,
    c.payload,
    a.payload as answer,
    a.error_code,
    a.error_description,
    c.is_retransmit,
    c.source_file,
    c.record_no,
from calls as c
asof left join answers as a
    on c.charge_point_id = a.charge_point_id
    and c.msg_id = a.msg_id
    and c.answer_direction = a.direction
    and c.received_at <= a.received_at
