-- Per charger: its clock (recon.charger_clock's skew estimate, and the start drift seen on
-- its sessions) and its findings by kind. Grain: charge_point_id.
-- start drift = charger (OCPP) start minus backend start, seconds: negative = behind.
with sessions as (
    select
        sf.charge_point_id,
        max(sf.site_id) as site_id,
        max(sf.site_type) as site_type,
        count(*) as sessions,
        min(sf.started_at) as first_session_at,
        max(sf.started_at) as last_session_at,
        median(sf.start_drift_s) as median_start_drift_s,
        quantile_cont(abs(sf.start_drift_s), 0.95) as p95_abs_start_drift_s,
        max(abs(sf.start_drift_s)) as max_abs_start_drift_s,
        sum(sf.energy_kwh) as energy_kwh,
    from marts.session_facts as sf
    where sf.charge_point_id is not null
    group by sf.charge_point_id
),

findings as (
    select
        fi.charge_point_id,
        max(fi.site_id) as site_id,
        max(fi.site_type) as site_type,
        count(*) as findings,
        count(*) filter (where fi."check" = 'charger_clock_skew') as clock_skew_findings,
        count(*) filter (where fi."check" = 'timestamp_drift') as timestamp_drift_findings,
        count(*) filter (where fi."check" = 'meter_anomaly') as meter_anomaly_findings,
        count(*) filter (where fi."check" = 'incomplete_session') as incomplete_session_findings,
        count(*) filter (where fi."check" = 'auth_latency') as auth_latency_findings,
        count(*) filter (where fi."check" in ('status_mismatch', 'capability_mismatch'))
            as location_findings,
        list_sort(list_distinct(list(
            json_extract_string(fi.evidence, '$.anomaly')
        ) filter (where fi."check" = 'meter_anomaly'))) as meter_anomalies,
        sum(fi.money_at_risk) as money_at_risk,
    from marts.findings as fi
    where fi.charge_point_id is not null
    group by fi.charge_point_id
),

chargers as (
    select s.charge_point_id from sessions as s
    union
    select f.charge_point_id from findings as f
    union
    select cc.charge_point_id from recon.charger_clock as cc
)

select
    c.charge_point_id,
    coalesce(s.site_id, f.site_id) as site_id,
    coalesce(s.site_type, f.site_type) as site_type,
    coalesce(s.sessions, 0) as sessions,
    cc.skew_s as clock_skew_s,
    coalesce(cc.is_skewed, false) as clock_is_skewed,
    s.first_session_at,
    s.last_session_at,
    s.median_start_drift_s,
    s.p95_abs_start_drift_s,
    s.max_abs_start_drift_s,
    s.energy_kwh,
    coalesce(f.findings, 0) as findings,
    coalesce(f.clock_skew_findings, 0) as clock_skew_findings,
    coalesce(f.timestamp_drift_findings, 0) as timestamp_drift_findings,
    coalesce(f.meter_anomaly_findings, 0) as meter_anomaly_findings,
    coalesce(f.incomplete_session_findings, 0) as incomplete_session_findings,
    coalesce(f.auth_latency_findings, 0) as auth_latency_findings,
    coalesce(f.location_findings, 0) as location_findings,
    f.meter_anomalies,
    coalesce(f.money_at_risk, 0) as money_at_risk,
from chargers as c
left join sessions as s on s.charge_point_id = c.charge_point_id
left join findings as f on f.charge_point_id = c.charge_point_id
left join recon.charger_clock as cc on cc.charge_point_id = c.charge_point_id
where c.charge_point_id is not null
