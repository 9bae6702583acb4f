-- One OCPP record per JSONL line of `_ocpp_lines` (source_file, record_no, is_log, line)
-- and per frame line of a text log (`_ocpp_log_fields`, from raw/ocpp_log_lines.sql).
-- Returns every record with either its envelope fields or the reasons it cannot be read;
-- the loader splits the two.
-- Each JSON line is parsed as few times as possible: this runs on every frame of the night.
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
    from jsonl
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

log_frames as (
    -- text-log lines a line pattern read as frames (raw/ocpp_log_lines.sql)
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
        false as frame_is_array,
    from _ocpp_log_fields
    where is_frame
),

unioned as (
    select *, null::varchar as received_tz, false as is_log from jsonl_frames
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
