-- staging.tokens: one row per OCPI Token snapshot; the uid and the contract id are kept only
-- as keyed hashes (personal data, pipeline.privacy).
-- Grain: (country_code, party_id, token_uid_hash, type, last_updated_at).
with src as (
    select
        source_file,
        record_no,
        obj as o,
        nullif(trim(obj ->> 'country_code'), '') as country_code,
        nullif(trim(obj ->> 'party_id'), '') as party_id,
        nullif(upper(trim(obj ->> 'uid')), '') as uid_norm,
        obj ->> 'type' as type,
        obj ->> 'valid' as valid_raw,
        obj ->> 'whitelist' as whitelist,
        obj ->> 'contract_id' as contract_id,
        obj ->> 'issuer' as issuer,
        obj ->> 'last_updated' as last_updated_raw
    from raw.tokens
),

typed as (
    select
        src.*,
        token_hash(uid_norm, $token_ipad, $token_opad) as token_uid_hash,
        token_hash(contract_id, $token_ipad, $token_opad) as contract_id_hash,
        try_cast(valid_raw as boolean) as valid,
        try_cast(last_updated_raw as timestamptz) as last_updated_at
    from src
),

ranked as (
    select
        typed.*,
        row_number() over w as dup_rank,
        first(source_file || ':' || record_no) over w as first_seen
    from typed
    window w as (
        partition by country_code, party_id, token_uid_hash, type, last_updated_at
        order by source_file, record_no
    )
)

select
    country_code,
    party_id,
    token_uid_hash,
    type,
    valid,
    whitelist,
    contract_id_hash,
    issuer,
    last_updated_at,
    source_file,
    record_no,
    []::varchar[] as dq_warnings,
    list_filter([
        case when valid_raw is not null and valid is null then 'valid: not a boolean' end,
        case when last_updated_raw is not null and last_updated_at is null
            then 'last_updated: not an ISO 8601 timestamp' end,
        case when token_uid_hash is not null and last_updated_at is not null and dup_rank > 1
            then 'duplicate token snapshot (first at ' || first_seen || ')' end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from ranked
