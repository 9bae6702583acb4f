-- One OCPP record per landing line, read set-based from `_ocpp_lines`
-- (source_file, record_no, is_log, line). Returns every line with either its envelope
-- fields or the reasons it cannot be read; the loader splits the two.
-- Each JSON line is parsed as few times as possible: this runs on every frame of the night.
-- A .jsonl line that is a bare OCPP-J array (a capture without envelope, one frame per
-- line) is a frame too: its charger is the folder holding the file (the file's name when it
-- lies directly in ocpp/), a CALL's direction follows from its action ($charger_actions
-- come in), an answer goes the other way than its CALL. It has no CSMS receive time: it is
-- estimated from the charger's own stamps in file order (the latest stamp so far; before
-- the first one, that first one) and marked received_basis = 'file_order', so that no
-- clock estimate compares the charger's clock with itself.
with jsonl as (
    select
        source_file,
        record_no,
        line,
        json_valid(line) as is_json,
    from _ocpp_lines
    where not is_log
),

jsonl_fields as (
    select
        source_file,
        record_no,
        line,
        is_json,
        case when is_json then json_type(line) = 'OBJECT' else false end as is_object,
        case when is_json then
            json_extract_string(line, ['$.received_at', '$.charge_point_id', '$.direction', '$.ocpp_version'])
        end as fields,
        case when is_json then json_extract(line, '$.frame') end as frame_any,
        case when is_json then json_type(line) = 'ARRAY' else false end as is_bare,
    from jsonl
),

bare as (
    select
        source_file,
        record_no,
        line,
        try_cast(line ->> 0 as integer) as msg_type,
        line ->> 1 as msg_id,
        case when try_cast(line ->> 0 as integer) = 2 then line ->> 2 end as action,
        case when try_cast(line ->> 0 as integer) = 2 then try_cast(coalesce(
            line -> 3 ->> 'timestamp', line -> 3 -> 'meterValue' -> 0 ->> 'timestamp'
        ) as timestamptz) end as stamp_at,
        string_split(source_file, '/') as path_parts,
    from jsonl_fields
    where is_bare
),

bare_timed as (
    select
        b.source_file,
        b.record_no,
        coalesce(
            max(b.stamp_at) over (partition by b.source_file order by b.record_no rows unbounded preceding),
            first_value(b.stamp_at ignore nulls) over (
                partition by b.source_file order by b.record_no rows between current row and unbounded following)
        )::varchar as received_at,
        case
            when len(b.path_parts) >= 3 then b.path_parts[-2]
            else regexp_replace(b.path_parts[-1], '(\.[^.]*)?(\.gz)?$', '')
        end as charge_point_id,
        case
            when b.msg_type = 2 then case when list_contains($charger_actions, b.action) then 'in' else 'out' end
            when c.action is not null then case when list_contains($charger_actions, c.action) then 'out' else 'in' end
            else 'out'
        end as direction,
    from bare as b
    left join bare as c
        on b.msg_type in (3, 4) and c.msg_type = 2 and c.source_file = b.source_file and c.msg_id = b.msg_id
    qualify row_number() over (partition by b.source_file, b.record_no order by c.record_no) = 1
),

jsonl_frames as (
    select
        f.* exclude (fields, frame_any, is_bare) replace (f.is_object or f.is_bare as is_object),
        coalesce(bt.received_at, f.fields[1]) as received_at,
        coalesce(bt.charge_point_id, f.fields[2]) as charge_point_id,
        coalesce(bt.direction, f.fields[3]) as direction,
        f.fields[4] as ocpp_version,
        case when f.is_bare then 'file_order' end as received_basis,
        -- the frame may be the array itself or a string holding its JSON text
        case
            when f.is_bare then f.line
            else case json_type(f.frame_any)
                when 'ARRAY' then f.frame_any::varchar
                when 'VARCHAR' then f.frame_any ->> '$'
                else f.frame_any::varchar
            end
        end as frame_text,
        f.is_bare or json_type(f.frame_any) = 'ARRAY' as frame_is_array,
    from jsonl_fields as f
    left join bare_timed as bt on bt.source_file = f.source_file and bt.record_no = f.record_no
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
    from _ocpp_lines
    where is_log
),

log_frames as (
    select
        source_file,
        record_no,
        line,
        true as is_json,
        true as is_object,
        nullif(replace(m.ts, ',', '.'), '') as received_at,
        nullif(m.cp, '') as charge_point_id,
        case m.verb when 'receive message' then 'in' when 'send' then 'out' end as direction,
        null::varchar as ocpp_version,
        null::varchar as received_basis,
        nullif(m.frame, '') as frame_text,
        false as frame_is_array,
    from logs
),

unioned as (
    select *, null::varchar as received_tz, false as is_log from jsonl_frames
    union all by name
    select *, $log_tz as received_tz, true as is_log from log_frames
),

judged as (
    select
        *,
        -- an embedded array is valid JSON already; only text frames need a parse
        case
            when frame_is_array then true
            when json_valid(frame_text) then json_type(frame_text) = 'ARRAY'
            else false
        end as frame_ok,
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
    received_basis,
    case when frame_ok then frame_text::json end as frame,
    line,
    list_filter([
        case when is_log and frame_text is null then 'log line is not an OCPP frame' end,
        case when not is_log and not is_json then 'invalid JSON' end,
        case when not is_log and is_json and not is_object then 'line is not a JSON object' end,
        case when not is_log and is_object and frame_text is null then 'frame is missing' end,
        case when frame_text is not null and not frame_ok and not coalesce(json_valid(frame_text), false)
            then 'frame is not JSON' end,
        case when frame_text is not null and not frame_ok and json_valid(frame_text)
            then 'frame is not an OCPP-J array' end,
    ], lambda r: r is not null) as reasons,
from judged
