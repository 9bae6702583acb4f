-- staging.ocpp_frames: one row per OCPP-J frame, typed and UTC, with the reasons a frame
-- cannot be used in _reject_reasons (pipeline.contracts.route_rejects moves those rows).
-- Params: $v201_only_actions (VARCHAR[]): actions that exist only in OCPP 2.0.1;
-- $batch_files (VARCHAR[]): the source files to stage (version and retransmissions are
-- judged within them: one night's files);
-- $token_ipad, $token_opad (BLOB): pipeline.privacy.token_hash_params, for the token_hash macro.
-- Token UIDs are personal data: every idTag, parentIdTag and idToken string in a payload
-- is replaced by its keyed hash (pipeline.privacy.token_hash), so staging and everything
-- built on it carry only hashes; raw.ocpp_frames keeps the frames as received.
with source as (
    select
        source_file,
        record_no,
        trim(received_at) as received_at_raw,
        received_tz,
        coalesce(received_basis, 'csms') as received_at_basis,
        nullif(trim(charge_point_id), '') as charge_point_id,
        lower(trim(direction)) as direction,
        lower(trim(ocpp_version)) as ocpp_version_raw,
        -- one parse per frame: the elements stay JSON, only the small ones are read again
        from_json(frame, '["JSON"]') as parts,
        json_extract_string(frame, ['$[0]', '$[1]', '$[2]', '$[3]']) as texts,
        hash(frame::varchar) as frame_hash,
    from raw.ocpp_frames
    -- the files being (re)staged: a night stages its new files, not the history
    where source_file in (select unnest($batch_files::varchar[]))
),

elements as (
    select
        * exclude (parts, texts),
        parts is not null as is_array,
        try_cast(texts[1] as integer) as msg_type,
        nullif(trim(texts[2]), '') as msg_id,
        texts[3] as third_text,
        texts[4] as fourth_text,
        parts[3] as third,
        parts[4] as fourth,
        parts[5] as fifth,
    from source
),

zones as (
    select name as zone_name from pg_timezone_names()
),

parsed as (
    select
        s.* exclude (third, fourth, fifth, third_text, fourth_text),
        z.zone_name,
        case when s.msg_type = 2 then nullif(trim(s.third_text), '') end as action,
        case s.msg_type when 2 then s.fourth when 3 then s.third when 4 then s.fifth end as payload,
        case when s.msg_type = 4 then s.third_text end as error_code,
        case when s.msg_type = 4 then s.fourth_text end as error_description,
        case
            -- .log rows: naive local time of the logging host
            when s.received_tz is not null
                then timezone(coalesce(z.zone_name, 'UTC'), try_cast(s.received_at_raw as timestamp))
            -- epoch seconds or milliseconds, as some CSMS exports write them
            when regexp_full_match(s.received_at_raw, '\d{9,10}(\.\d+)?')
                then to_timestamp(s.received_at_raw::double)
            when regexp_full_match(s.received_at_raw, '\d{12,13}(\.\d+)?')
                then to_timestamp(s.received_at_raw::double / 1000)
            -- ISO 8601 with Z, +00:00, +0000 or no offset (read as UTC: the session zone)
            else try_cast(s.received_at_raw as timestamptz)
        end as received_at,
        case
            when s.ocpp_version_raw in ('1.6', '1.6j', 'ocpp1.6', 'ocpp1.6j', 'v16') then '1.6'
            when s.ocpp_version_raw in ('2.0.1', 'ocpp2.0.1', 'v201') then '2.0.1'
        end as ocpp_version_given,
    from elements as s
    left join zones as z on s.received_tz = z.zone_name
),

reasoned as materialized (
    select
        *,
        list_filter([
            case when received_at is null then 'received_at:unparseable' end,
            case when received_tz is not null and zone_name is null then 'received_tz:unknown_time_zone' end,
            case when charge_point_id is null then 'charge_point_id:missing' end,
            case when direction is null or direction not in ('in', 'out') then 'direction:not_in_out' end,
            case when not is_array then 'frame:not_array' end,
            case when msg_type is null or msg_type not in (2, 3, 4) then 'msg_type:unknown' end,
            case when msg_id is null then 'msg_id:missing' end,
            case when msg_type = 2 and action is null then 'action:missing' end,
            case when msg_type in (2, 3) and not coalesce(starts_with(payload::varchar, '{'), false)
                then 'payload:not_object' end,
            case when msg_type = 4 and error_code is null then 'error_code:missing' end,
        ], lambda r: r is not null) as _reject_reasons,
    from parsed
),

-- Version per charger, from its good frames only: a given version wins, else any
-- 2.0.1-only action (TransactionEvent, RequestStartTransaction, ...) means 2.0.1.
charger_version as (
    select
        charge_point_id,
        mode(ocpp_version_given) as given_version,
        bool_or(action in $v201_only_actions) as speaks_201,
    from reasoned
    where len(_reject_reasons) = 0
    group by charge_point_id
),

-- The same frame text again from the same side is a retransmission (or a log line
-- shipped twice): noise that must not count twice downstream. Found by a narrow
-- aggregate first, so only the rare repeated frames go through a window.
repeated as (
    select charge_point_id, direction, msg_id, frame_hash
    from reasoned
    where len(_reject_reasons) = 0
    group by all
    having count(*) > 1
),

retransmits as (
    select source_file, record_no
    from (
        select
            r.source_file,
            r.record_no,
            row_number() over (
                partition by r.charge_point_id, r.direction, r.msg_id, r.frame_hash
                order by r.received_at, r.source_file, r.record_no
            ) as copy_no,
        from reasoned as r
        semi join repeated as g
            on r.charge_point_id = g.charge_point_id and r.direction = g.direction
            and r.msg_id = g.msg_id and r.frame_hash = g.frame_hash
        where len(r._reject_reasons) = 0
    )
    where copy_no > 1
)

select
    r.charge_point_id,
    r.received_at,
    -- 'csms': the CSMS's receive clock; 'file_order': a bare frame's time estimated from
    -- the charger's stamps in file order (raw/ocpp_frames.sql), not a clock of its own
    r.received_at_basis,
    r.direction,
    r.msg_type,
    r.msg_id,
    r.action,
    -- The cheap substring test keeps the regex off the ~95 % of frames (meter values,
    -- status, heartbeats) that carry no token.
    case when contains(r.payload::varchar, 'dTag"') or contains(r.payload::varchar, 'dToken"') then
        list_reduce(
            list_prepend(r.payload::varchar, regexp_extract_all(
                r.payload::varchar, '"(?:idTag|parentIdTag|idToken)"\s*:\s*"((?:[^"\\]|\\.)*)"', 1)),
            -- a UID that is blank once unescaped has no hash (null): its text stays
            lambda acc, u: case when nullif(trim(u), '') is null then acc else coalesce(replace(
                acc, '"' || u || '"',
                '"' || token_hash(json_extract_string('"' || u || '"', '$'), $token_ipad, $token_opad) || '"'),
                acc) end
        )::json
        else r.payload
    end as payload,
    coalesce(
        r.ocpp_version_given, v.given_version, case when v.speaks_201 then '2.0.1' else '1.6' end
    ) as ocpp_version,
    case
        when r.ocpp_version_given is not null then 'frame'
        when v.given_version is not null then 'charger'
        else 'inferred'
    end as ocpp_version_basis,
    t.record_no is not null as is_retransmit,
    r.error_code,
    r.error_description,
    r.source_file,
    r.record_no,
    r._reject_reasons,
from reasoned as r
left join charger_version as v on r.charge_point_id = v.charge_point_id
left join retransmits as t on r.source_file = t.source_file and r.record_no = t.record_no
