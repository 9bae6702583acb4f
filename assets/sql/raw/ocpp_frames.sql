-- One OCPP record per landing line, read set-based from the registered `_ocpp_lines`
-- (source_file, record_no, is_log, line). Returns every line with either its envelope
-- fields or the reasons it cannot be read; the loader splits the two.
with lines as (
    select
        source_file,
        record_no,
        is_log,
        line,
    from _ocpp_lines
),

jsonl as (
    select
        source_file,
        record_no,
        line,
        json_valid(line) as is_json,
        case when json_valid(line) then line::json end as j,
    from lines
    where not is_log
),

jsonl_fields as (
    select
        source_file,
        record_no,
        line,
        is_json,
        j ->> 'received_at' as received_at,
        j ->> 'charge_point_id' as charge_point_id,
        j ->> 'direction' as direction,
        j ->> 'ocpp_version' as ocpp_version,
        -- the frame may be the array itself or a string holding its JSON text
        case when json_type(j -> 'frame') = 'VARCHAR' then j ->> 'frame' else (j -> 'frame')::varchar end
            as frame_text,
        coalesce(json_type(j) = 'OBJECT', false) as is_object,
    from jsonl
),

logs as (
    select
        source_file,
        record_no,
        line,
        regexp_extract(
            line,
            '^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+\w+\s+\([^)]*\)\s+\[[^\]]*\]\s+([^:\s]+):\s+(receive message|send)\s+(\[.*\])\s*$',
            ['ts', 'cp', 'verb', 'frame']
        ) as m,
    from lines
    where is_log
),

log_fields as (
    select
        source_file,
        record_no,
        line,
        true as is_json,
        true as is_object,
        nullif(replace(m.ts, ',', '.'), '') as received_at,
        nullif(m.cp, '') as charge_point_id,
        case m.verb when 'receive message' then 'in' when 'send' then 'out' end as direction,
        null as ocpp_version,
        nullif(m.frame, '') as frame_text,
    from logs
),

unioned as (
    select *, null::varchar as received_tz, false as is_log from jsonl_fields
    union all by name
    select *, $log_tz as received_tz, true as is_log from log_fields
),

judged as (
    select
        *,
        coalesce(json_valid(frame_text), false) as frame_is_json,
        list_filter([
            case when is_log and frame_text is null then 'log line is not an OCPP frame' end,
            case when not is_log and not is_json then 'invalid JSON' end,
            case when not is_log and is_json and not is_object then 'line is not a JSON object' end,
            case when is_json and is_object and frame_text is null and not is_log then 'frame is missing' end,
            case when frame_text is not null and not coalesce(json_valid(frame_text), false)
                then 'frame is not JSON' end,
            case when coalesce(json_valid(frame_text), false) and json_type(frame_text::json) <> 'ARRAY'
                then 'frame is not an OCPP-J array' end,
        ], lambda r: r is not null) as reasons,
    from unioned
)

select
    source_file,
    record_no,
    received_at,
    received_tz,
    charge_point_id,
    direction,
    ocpp_version,
    case when len(reasons) = 0 then json(frame_text) end as frame,
    line,
    reasons,
from judged
