-- staging.cdrs: one row per OCPI CDR (2.2.1 first; 2.1.1 and 2.3.0 mapped onto it).
-- Grain: (country_code, party_id, cdr_id); a re-sent CDR keeps its latest last_updated.
-- OCPI times without a zone designator are UTC (OCPI 2.2.1 types: DateTime).
with src as (
    select
        source_file,
        record_no,
        obj as o,
        case
            when json_type(obj -> 'total_cost') in ('UBIGINT', 'BIGINT', 'DOUBLE')
                or (obj -> 'location') is not null
                or (obj ->> 'stop_date_time') is not null then '2.1.1'
            when (obj -> 'total_cost' -> 'before_taxes') is not null then '2.3.0'
            else '2.2.1'
        end as ocpi_version,
        coalesce(obj -> 'cdr_location', obj -> 'location') as loc
    from raw.cdrs
),

fields as (
    select
        source_file,
        record_no,
        o,
        ocpi_version,
        nullif(trim(o ->> 'id'), '') as cdr_id,
        nullif(trim(o ->> 'country_code'), '') as country_code,
        nullif(trim(o ->> 'party_id'), '') as party_id,
        o ->> 'start_date_time' as start_raw,
        coalesce(o ->> 'end_date_time', o ->> 'stop_date_time') as end_raw,
        o ->> 'last_updated' as last_updated_raw,
        o ->> 'session_id' as ocpi_session_id,
        coalesce(o ->> 'auth_id', o -> 'cdr_token' ->> 'contract_id') as auth_id,
        o -> 'cdr_token' ->> 'uid' as token_uid,
        o -> 'cdr_token' ->> 'type' as token_type,
        o -> 'cdr_token' as cdr_token,
        o ->> 'auth_method' as auth_method,
        loc ->> 'id' as location_id,
        coalesce(loc ->> 'evse_uid', loc -> 'evses' -> 0 ->> 'uid') as evse_uid,
        coalesce(loc ->> 'evse_id', loc -> 'evses' -> 0 ->> 'evse_id') as evse_id,
        coalesce(loc ->> 'connector_id', loc -> 'evses' -> 0 -> 'connectors' -> 0 ->> 'id') as connector_id,
        upper(loc ->> 'country') as location_country,
        try_cast(loc -> 'coordinates' ->> 'latitude' as double) as latitude,
        try_cast(loc -> 'coordinates' ->> 'longitude' as double) as longitude,
        upper(o ->> 'currency') as currency,
        o -> 'total_cost' as p_total,
        o -> 'total_fixed_cost' as p_fixed,
        o -> 'total_energy_cost' as p_energy,
        o -> 'total_time_cost' as p_time,
        o -> 'total_parking_cost' as p_parking,
        o -> 'total_reservation_cost' as p_reservation,
        o ->> 'total_energy' as total_energy_raw,
        o ->> 'total_time' as total_time_raw,
        o ->> 'total_parking_time' as total_parking_time_raw,
        o ->> 'credit' as credit_raw,
        nullif(trim(o ->> 'credit_reference_id'), '') as credit_reference_id,
        list_filter(list_distinct(list_concat(
            coalesce(list_transform(from_json(o -> 'tariffs', '["JSON"]'), lambda t: t ->> 'id'), []),
            coalesce(list_transform(from_json(o -> 'charging_periods', '["JSON"]'), lambda p: p ->> 'tariff_id'), [])
        )), lambda x: x is not null) as tariff_ids,
        coalesce(json_array_length(o -> 'charging_periods'), 0) as n_periods
    from src
),

typed as (
    select
        fields.*,
        try_cast(start_raw as timestamptz) as start_at,
        try_cast(end_raw as timestamptz) as end_at,
        try_cast(last_updated_raw as timestamptz) as last_updated_at,
        -- Price: 2.1.1 a bare number, 2.2.1 {excl_vat, incl_vat}, 2.3.0 {before_taxes, taxes[]}.
        case when json_type(p_total) in ('UBIGINT', 'BIGINT', 'DOUBLE') then try_cast(p_total::varchar as double)
            else coalesce(try_cast(p_total ->> 'excl_vat' as double), try_cast(p_total ->> 'before_taxes' as double))
        end as total_cost_excl_vat,
        coalesce(
            try_cast(p_total ->> 'incl_vat' as double),
            try_cast(p_total ->> 'before_taxes' as double) + coalesce(list_sum(list_transform(
                from_json(p_total -> 'taxes', '["JSON"]'), lambda t: try_cast(t ->> 'amount' as double))), 0)
        ) as total_cost_incl_vat,
        coalesce(try_cast(p_fixed ->> 'excl_vat' as double), try_cast(p_fixed ->> 'before_taxes' as double))
            as total_fixed_cost_excl_vat,
        coalesce(try_cast(p_energy ->> 'excl_vat' as double), try_cast(p_energy ->> 'before_taxes' as double))
            as total_energy_cost_excl_vat,
        coalesce(try_cast(p_time ->> 'excl_vat' as double), try_cast(p_time ->> 'before_taxes' as double))
            as total_time_cost_excl_vat,
        coalesce(try_cast(p_parking ->> 'excl_vat' as double), try_cast(p_parking ->> 'before_taxes' as double))
            as total_parking_cost_excl_vat,
        coalesce(try_cast(p_reservation ->> 'excl_vat' as double),
            try_cast(p_reservation ->> 'before_taxes' as double)) as total_reservation_cost_excl_vat,
        try_cast(total_energy_raw as double) as total_energy_kwh,
        try_cast(total_time_raw as double) as total_time_h,
        try_cast(total_parking_time_raw as double) as total_parking_time_h,
        coalesce(try_cast(credit_raw as boolean), false) as credit
    from fields
),

ranked as (
    select
        typed.*,
        row_number() over w as dup_rank,
        first(source_file || ':' || record_no) over w as kept,
        first(md5(o::varchar)) over w = md5(o::varchar) as same_as_kept
    from typed
    window w as (
        partition by country_code, party_id, cdr_id
        order by last_updated_at desc nulls last, source_file desc, record_no desc
    )
),

credits as (
    select
        country_code,
        party_id,
        credit_reference_id,
        min(cdr_id) as credit_cdr_id
    from ranked
    where credit and credit_reference_id is not null and dup_rank = 1
    group by all
)

select
    r.cdr_id,
    r.country_code,
    r.party_id,
    r.ocpi_version,
    r.start_at,
    r.end_at,
    r.ocpi_session_id,
    -- 2.1.1 auth_id / 2.2.1 cdr_token.contract_id name the driver's contract: personal data
    -- like the uid, so only their keyed hashes (pipeline.privacy) leave the raw layer.
    token_hash(r.auth_id, $token_ipad, $token_opad) as auth_id_hash,
    token_hash(r.token_uid, $token_ipad, $token_opad) as token_uid_hash,
    r.token_type,
    r.auth_method,
    r.location_id,
    r.evse_uid,
    r.evse_id,
    r.connector_id,
    -- CdrLocation coordinates (2.1.1 and 2.2.1 send them as strings)
    r.latitude,
    r.longitude,
    r.currency,
    r.tariff_ids::varchar[] as tariff_ids,
    r.total_cost_excl_vat,
    r.total_cost_incl_vat,
    r.total_fixed_cost_excl_vat,
    r.total_energy_cost_excl_vat,
    r.total_time_cost_excl_vat,
    r.total_parking_cost_excl_vat,
    r.total_reservation_cost_excl_vat,
    r.total_energy_kwh,
    r.total_time_h,
    r.total_parking_time_h,
    r.credit,
    r.credit_reference_id,
    c.credit_cdr_id as credited_by_cdr_id,
    r.last_updated_at,
    -- The object as read, its token uid and contract id replaced by their keyed hashes
    -- (personal data): pricing and trace need the rest.
    case
        when r.cdr_token is not null then json_merge_patch(r.o, json_object('cdr_token', json_object(
            'uid', token_hash(r.token_uid, $token_ipad, $token_opad),
            'contract_id', token_hash(r.cdr_token ->> 'contract_id', $token_ipad, $token_opad))))
        when (r.o ->> 'auth_id') is not null then json_merge_patch(r.o, json_object('auth_id', token_hash(r.auth_id, $token_ipad, $token_opad)))
        else r.o
    end as cdr_json,
    r.source_file,
    r.record_no,
    list_filter([
        case when r.ocpi_version = '2.1.1' then 'ocpi 2.1.1: total_cost has no VAT split, taken as excl. VAT' end,
        case when r.last_updated_at < r.end_at then 'last_updated before end_date_time' end,
        case when list_bool_or(list_transform([r.start_raw, r.end_raw, r.last_updated_raw], lambda t:
                try_cast(t as timestamptz) is not null
                and not regexp_matches(trim(t), '\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$')))
            then 'times without a time zone, read as UTC' end,
        case when r.ocpi_version <> '2.1.1' and r.cdr_token is not null
                and ((r.cdr_token ->> 'country_code') is null or (r.cdr_token ->> 'party_id') is null)
            then 'cdr_token: country_code/party_id missing' end,
        case when abs(r.latitude) > 90
                or (r.location_country in ('BEL', 'NLD', 'DEU', 'FRA', 'GBR', 'AUT', 'CHE', 'DNK', 'NOR',
                    'SWE', 'FIN', 'POL', 'CZE', 'ITA', 'ESP', 'PRT', 'IRL', 'LUX')
                    and r.latitude between -35 and 35 and r.longitude between 35 and 72)
            then 'coordinates: latitude and longitude look swapped' end,
        case when r.n_periods = 0 and r.ocpi_version <> '2.1.1' then 'charging_periods: none' end,
        case when r.credit and r.total_cost_excl_vat > 0
            then 'credit CDR: total_cost positive (OCPI negates the credited amounts)' end,
        case when r.credit and c.credit_cdr_id is null
                and r.credit_reference_id not in (select x.cdr_id from ranked as x where x.cdr_id is not null)
            then 'credit_reference_id: referenced CDR not ingested' end
    ], lambda x: x is not null)::varchar[] as dq_warnings,
    list_filter([
        case when r.start_raw is not null and r.start_at is null then 'start_date_time: not an ISO 8601 timestamp' end,
        case when r.end_raw is not null and r.end_at is null then 'end_date_time: not an ISO 8601 timestamp' end,
        case when r.last_updated_raw is not null and r.last_updated_at is null
            then 'last_updated: not an ISO 8601 timestamp' end,
        case when r.total_energy_raw is not null and r.total_energy_kwh is null then 'total_energy: not a number' end,
        case when r.total_time_raw is not null and r.total_time_h is null then 'total_time: not a number' end,
        case when r.p_total is not null and r.total_cost_excl_vat is null then 'total_cost: not a price' end,
        case when r.credit_raw is not null and try_cast(r.credit_raw as boolean) is null
            then 'credit: not a boolean' end,
        case when r.cdr_id is not null and r.dup_rank > 1 and r.same_as_kept
            then 'duplicate CDR: same content as ' || r.kept end,
        case when r.cdr_id is not null and r.dup_rank > 1 and not r.same_as_kept
            then 'duplicate CDR id: superseded by ' || r.kept end
    ], lambda x: x is not null)::varchar[] as _reject_reasons
from ranked as r
left join credits as c
    on c.country_code is not distinct from r.country_code
    and c.party_id is not distinct from r.party_id
    and c.credit_reference_id = r.cdr_id
