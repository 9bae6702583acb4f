-- The lines of OCPP text logs read by one line pattern (`pipeline/ingest/formats.py`):
-- the `_ocpp_lines` rows of the files `_ocpp_log_files` gives `pattern_no = $pattern_no`
-- (with the charger their path names), split into the envelope fields.
-- `is_frame` is false for a line the pattern does not match (a notice or prose line: it is
-- counted, not a record). A frame line keeps its frame text as written; ocpp_frames.sql
-- judges it. `$names` names the pattern's capture groups in order.
with matched as (
    select
        source_file,
        record_no,
        line,
        f.path_charger,
        regexp_extract(line, $pattern, $names) as m,
    from _ocpp_lines as l
    join _ocpp_log_files as f using (source_file)
    where f.pattern_no = $pattern_no
),

fields as (
    select
        source_file,
        record_no,
        line,
        nullif(trim(m.time), '') as time_raw,
        nullif(lower(trim(m.direction)), '') as direction_raw,
        coalesce(nullif(trim(m.charger), ''), path_charger) as charge_point_id,
        nullif(m.frame, '') as frame_text,
    from matched
)

select
    source_file,
    record_no,
    line,
    frame_text is not null as is_frame,
    -- a time the format cannot read stays as written: staging rejects it with its text
    case
        when not $parse_time then replace(time_raw, ',', '.')
        else coalesce(strftime(try_strptime(time_raw, $time_format), '%Y-%m-%dT%H:%M:%S.%f'), time_raw)
    end as received_at,
    $time_zone::varchar as received_tz,
    charge_point_id,
    case
        when list_contains($dir_in, direction_raw) then 'in'
        when list_contains($dir_out, direction_raw) then 'out'
        else direction_raw
    end as direction,
    $ocpp_version::varchar as ocpp_version,
    frame_text,
from fields
