-- One OCPP record per JSONL line of `_ocpp_lines` (source_file, record_no, is_log, line)
-- and per frame line of a text log (`_ocpp_log_fields`, from ocpp_log_lines.sql).
-- Returns every record with either its envelope fields or the reasons it cannot be read;
-- the loader splits the two.
-- Each JSON line is parsed as few times as possible: this runs on every frame of the night.
-- A .jsonl line that is a bare OCPP-J array (a capture without envelope, one frame per
-- line) is a frame too: its charger is the folder holding the file (the file's name when it
-- lies directly in ocpp/), a CALL's direction follows from its action ($charger_actions
-- come in), an answer goes the other way than its CALL. It has no CSMS receive time: it is
-- estimated from the charger's own stamps in file order (the latest stamp so far; before
-- the first one, that first one) and marked received_basis = 'file_order', so that no
-- clock estimate compares the charger's clock with itself. Enveloped lines never reach
-- that branch (a cheap first-character test keeps them on their own path).
with jsonl as (
    select
        source_file,
        record_no,
        line,
        json_valid(line) as is_json,
        starts_with(ltrim(line), '[') as looks_bare,
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
    from jsonl
    where not (looks_bare and is_json)
),

jsonl_frames as (
    select
        * exclude (fields, frame_any),
        fields[1] as received_at,
        fields[2] as charge_point_id,
        fields[3] as direction,
        fields[4] as ocpp_version,
        -- the frame may be the array itself or a string holding its JSON text
        case json_type(frame_any)
            when 'ARRAY' then frame_any::varchar
            when 'VARCHAR' then frame_any ->> '$'
            else frame_any::varchar
        end as frame_text,
        json_type(frame_any) = 'ARRAY' as frame_is_array,
    from jsonl_fields
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
    from jsonl
    where looks_bare and is_json
),

bare_frames as (
    select
        b.source_file,
        b.record_no,
        b.line,
        true as is_json,
        true as is_object,
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
        null::varchar as ocpp_version,
        'file_order' as received_basis,
        b.line as frame_text,
        true as frame_is_array,
    from bare as b
    left join bare as c
        on b.msg_type in (3, 4) and c.msg_type = 2 and c.source_file = b.source_file and c.msg_id = b.msg_id
    qualify row_number() over (partition by b.source_file, b.record_no order by c.record_no) = 1
),

log_frames as (
    -- text-log lines a line pattern read as frames (ocpp_log_lines.sql)
    select
        source_file,
        record_no,
        line,
        true as is_json,
        true as is_object,
        received_at,
        received_tz,
        charge_point_id,
        direction,
        ocpp_version,
        frame_text,
        null::varchar as received_basis,
        false as frame_is_array,
    from _ocpp_log_fields
    where is_frame
),

unioned as (
    select *, null::varchar as received_tz, null::varchar as received_basis, false as is_log from jsonl_frames
    union all by name
    select *, null::varchar as received_tz, false as is_log from bare_frames
    union all by name
    select *, true as is_log from log_frames
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
        case when not is_log and not is_json then 'invalid JSON' end,
        case when not is_log and is_json and not is_object then 'line is not a JSON object' end,
        case when not is_log and is_object and frame_text is null then 'frame is missing' end,
        case when frame_text is not null and not frame_ok and not coalesce(json_valid(frame_text), false)
            then 'frame is not JSON' end,
        case when frame_text is not null and not frame_ok and json_valid(frame_text)
            then 'frame is not an OCPP-J array' end,
    ], lambda r: r is not null) as reasons,
from judged
