-- Per site and UTC day: sessions, energy, revenue, reconciliation rate, link coverage and
-- findings by class. Grain: site x day.
-- reconciliation_rate = share of the day's sessions with no warn or error finding.
-- link_coverage = share of sessions that at least two sources (OCPP, backend, CDR) know.
-- Findings are dated by their session's start, else by their interval; charger findings
-- with neither (e.g. clock skew) are in marts.charger_health instead.
with classified as (
    select
        fi.*,
        coalesce(sf.site_id, fi.site_id) as kpi_site_id,
        coalesce(sf.session_day, cast(timezone('UTC', fi.interval_start) as date)) as day,
        case
            when fi."check" in ('timestamp_drift', 'charger_clock_skew') then 'timing'
            when fi."check" in ('stale_tariff', 'tariff_changed_during_session', 'cost_mismatch')
                then 'pricing'
            when fi."check" in ('energy_mismatch', 'energy_attribution_mismatch', 'meter_anomaly')
                then 'energy'
            when fi."check" in ('missing_cdr', 'orphan_cdr', 'missing_backend_session',
                                'duplicate_cdr', 'incomplete_session') then 'records'
            when fi."check" in ('token_invalid', 'auth_latency') then 'access'
            when fi."check" in ('status_mismatch', 'capability_mismatch') then 'location'
            else 'other'
        end as finding_class,
    from marts.findings as fi
    left join marts.session_facts as sf on sf.session_key = fi.session_key
),

sessions as (
    select
        sf.site_id,
        sf.session_day as day,
        max(sf.site_type) as site_type,
        count(*) as sessions,
        sum(sf.energy_kwh) as energy_kwh,
        sum(sf.revenue_excl_vat) as revenue_excl_vat,
        max(sf.currency) as currency,
        avg(case when sf.n_sources >= 2 then 1.0 else 0.0 end) as link_coverage,
    from marts.session_facts as sf
    where sf.session_day is not null
    group by sf.site_id, sf.session_day
),

findings as (
    select
        c.kpi_site_id as site_id,
        c.day,
        max(c.site_type) as site_type,
        count(distinct c.session_key) filter (where c.severity in ('warn', 'error'))
            as sessions_flagged,
        count(*) as findings,
        count(*) filter (where c.finding_class = 'timing') as findings_timing,
        count(*) filter (where c.finding_class = 'pricing') as findings_pricing,
        count(*) filter (where c.finding_class = 'energy') as findings_energy,
        count(*) filter (where c.finding_class = 'records') as findings_records,
        count(*) filter (where c.finding_class = 'access') as findings_access,
        count(*) filter (where c.finding_class = 'location') as findings_location,
        count(*) filter (where c.finding_class = 'other') as findings_other,
        sum(c.money_at_risk) as money_at_risk,
    from classified as c
    where c.day is not null
    group by c.kpi_site_id, c.day
)

select
    coalesce(s.site_id, f.site_id) as site_id,
    coalesce(s.site_type, f.site_type) as site_type,
    coalesce(s.day, f.day) as day,
    coalesce(s.sessions, 0) as sessions,
    coalesce(s.energy_kwh, 0) as energy_kwh,
    coalesce(s.revenue_excl_vat, 0) as revenue_excl_vat,
    s.currency,
    coalesce(f.sessions_flagged, 0) as sessions_flagged,
    case
        when coalesce(s.sessions, 0) > 0
            then 1.0 - least(coalesce(f.sessions_flagged, 0), s.sessions) / s.sessions
    end as reconciliation_rate,
    s.link_coverage,
    coalesce(f.findings, 0) as findings,
    coalesce(f.findings_timing, 0) as findings_timing,
    coalesce(f.findings_pricing, 0) as findings_pricing,
    coalesce(f.findings_energy, 0) as findings_energy,
    coalesce(f.findings_records, 0) as findings_records,
    coalesce(f.findings_access, 0) as findings_access,
    coalesce(f.findings_location, 0) as findings_location,
    coalesce(f.findings_other, 0) as findings_other,
    coalesce(f.money_at_risk, 0) as money_at_risk,
from sessions as s
full join findings as f on f.site_id = s.site_id and f.day = s.day
