-- staging.ocpp_authorizations: Authorize CALLs from chargers with the CSMS's answer and
-- its round trip. Retransmitted CALLs are left out (their latency is the original's).
-- The token is its keyed hash already (staging.ocpp_frames hashes every idTag/idToken).
select
    charge_point_id,
    nullif(coalesce(payload ->> 'idTag', payload -> 'idToken' ->> 'idToken'), '') as id_tag_hash,
    payload -> 'idToken' ->> 'type' as token_type,
    call_at as requested_at,
    answer_at as answered_at,
    coalesce(answer -> 'idTagInfo' ->> 'status', answer -> 'idTokenInfo' ->> 'status') as status,
    latency_ms,
    answer_type,
    error_code,
    ocpp_version,
    msg_id,
    source_file,
    record_no,
from staging.ocpp_calls
where action = 'Authorize' and direction = 'in' and not is_retransmit
