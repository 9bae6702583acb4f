-- staging.ocpp_authorizations: Authorize CALLs from chargers with the CSMS's answer and
-- its round trip. Retransmitted CALLs are left out (their latency is the original's).
-- Params: $token_hash_key (VARCHAR): key of the token hash analysts see.
select
    charge_point_id,
    coalesce(payload ->> 'idTag', payload -> 'idToken' ->> 'idToken') as id_tag,
    sha256($token_hash_key || coalesce(payload ->> 'idTag', payload -> 'idToken' ->> 'idToken')) as id_tag_hash,
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
