-- Sessions started with a token that was unknown to the token list, or whose version in force
-- at session start (latest last_updated_at at or before the start) was not valid, or whose
-- whitelist was NEVER while the charger authorised it without asking (no fresh Authorize):
-- the revoked-but-cached case, where a charger lets a card in from its local list or cache.
-- Tokens are matched by keyed hash (pipeline.privacy): staging holds the OCPP idTag and the
-- OCPI Token.uid only as that hash; a CDR's own token hash is the fallback.
-- A token whose every version was updated after the start has no known state then: not flagged.
-- Params: $fresh_authorize_s (an Authorize this long before the start counts as online).
with s as (
    select
        ls.session_key, ls.site_id, ls.site_type, ls.charge_point_id, ls.evse_uid, ls.ocpp_transaction_id,
        ls.backend_session_id, ls.cdr_id, ls.currency, ls.cdr_total_cost_excl_vat,
        coalesce(ls.ocpp_started_at, ls.backend_started_at, ls.cdr_started_at) as started_at,
        coalesce(t.start_received_at, ls.ocpp_started_at, ls.backend_started_at, ls.cdr_started_at)
            as started_received_at,
        t.id_tag_hash as ocpp_token_hash,
        t.ocpp_version,
        t.connector_id,
        t.transaction_id
    from lineage.sessions as ls
    left join lineage.transactions as t
        on t.charge_point_id = ls.charge_point_id and t.transaction_id = ls.ocpp_transaction_id
),

with_cdr as (
    select
        s.*,
        coalesce(s.ocpp_token_hash, c.token_uid_hash) as token_hash,
        case when s.ocpp_token_hash is not null then 'ocpp idTag' when c.token_uid_hash is not null then 'cdr token' end
            as token_source
    from s
    left join (
        select cdr_id, any_value(token_uid_hash) as token_uid_hash from staging.cdrs group by cdr_id
    ) as c on c.cdr_id = s.cdr_id
    where exists (select 1 from staging.tokens)
),

known as (
    select distinct token_uid_hash from staging.tokens
),

in_force as (
    -- per session and issuing party: the token version in force at the start
    select
        w.session_key,
        arg_max(k.valid, k.last_updated_at) as valid,
        arg_max(k.whitelist, k.last_updated_at) as whitelist,
        max(k.last_updated_at) as version_updated_at,
        k.country_code,
        k.party_id
    from with_cdr as w
    join staging.tokens as k on k.token_uid_hash = w.token_hash and k.last_updated_at <= w.started_at
    group by w.session_key, k.country_code, k.party_id
),

state as (
    select
        session_key,
        bool_or(coalesce(valid, false)) as any_valid,
        bool_and(whitelist = 'NEVER') filter (where coalesce(valid, false)) as valid_only_never,
        list(json_object('country_code', country_code, 'party_id', party_id, 'valid', valid,
                         'whitelist', whitelist, 'last_updated_at', version_updated_at)
             order by country_code, party_id) as versions
    from in_force
    group by session_key
),

auth as (
    select
        charge_point_id,
        requested_at,
        answered_at,
        status,
        id_tag_hash as token_hash
    from staging.ocpp_authorizations
    where id_tag_hash is not null
),

fresh as (
    select
        w.session_key,
        arg_max(a.status, a.requested_at) as authorize_status,
        max(a.requested_at) as authorize_at
    from with_cdr as w
    join auth as a
        on a.charge_point_id = w.charge_point_id and a.token_hash = w.token_hash
        and a.requested_at <= w.started_received_at
        and a.requested_at >= w.started_received_at - to_seconds($fresh_authorize_s)
    group by w.session_key
),

start_answer as (
    -- what the CSMS answered to the start itself (idTagInfo / idTokenInfo status)
    select
        e.charge_point_id,
        e.transaction_id,
        arg_min(
            coalesce(c.answer -> 'idTagInfo' ->> 'status', c.answer -> 'idTokenInfo' ->> 'status'), e.received_at
        ) as status
    from staging.ocpp_transaction_events as e
    join staging.ocpp_calls as c on c.charge_point_id = e.charge_point_id and c.msg_id = e.msg_id
    where e.event_type = 'started'
    group by e.charge_point_id, e.transaction_id
),

judged as (
    select
        w.*,
        st.versions,
        st.any_valid,
        f.authorize_status,
        f.authorize_at,
        sa.status as csms_start_answer,
        case
            when kn.token_uid_hash is null then 'unknown'
            when st.session_key is null then null
            when not st.any_valid then 'invalid'
            when st.valid_only_never and coalesce(f.authorize_status, '') <> 'Accepted' then 'never_whitelisted_local'
        end as reason
    from with_cdr as w
    left join known as kn on kn.token_uid_hash = w.token_hash
    left join state as st on st.session_key = w.session_key
    left join fresh as f on f.session_key = w.session_key
    left join start_answer as sa
        on sa.charge_point_id = w.charge_point_id and sa.transaction_id = w.ocpp_transaction_id
    where w.token_hash is not null
)

select
    session_key,
    site_id,
    site_type,
    charge_point_id,
    evse_uid,
    ocpp_transaction_id,
    backend_session_id,
    cdr_id,
    null::timestamptz as interval_start,
    coalesce(cdr_total_cost_excl_vat, 0) as money_at_risk,
    currency,
    json_object(
        'token_hash', token_hash,
        'token_source', token_source,
        'reason', reason,
        'session_started_at', started_at,
        'token_versions_in_force_at_start', versions,
        'authorized_by', case when authorize_at is not null then 'Authorize' else 'local list or cache (no Authorize)' end,
        'authorize_status', authorize_status,
        'authorize_at', authorize_at,
        'csms_start_answer', csms_start_answer,
        'fresh_authorize_s', $fresh_authorize_s,
        'sources', 'token: OCPI Token list (staging.tokens, version in force at start); ocpp: idTag of the start, Authorize and its answer'
    ) as evidence,
    format(
        'This session started with a token that was {} at the start{}, so the eMSP may refuse to pay for it.',
        case reason
            when 'unknown' then 'unknown to the eMSP token list'
            when 'invalid' then 'invalid (blocked or revoked) in the eMSP token list'
            else 'only allowed with an online check'
        end,
        case
            when authorize_at is not null then format(' (Authorize answered {})', coalesce(authorize_status, 'nothing'))
            else ' and the charger let it in from its local list or cache without asking'
        end
    ) as explanation
from judged
where reason is not null
