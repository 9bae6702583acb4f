-- recon.attribution_bands (read by assets/attribution.py into recon.attribution_judgement):
-- per site EMS interval, the band the EMS value must lie in and the total of the sessions'
-- energy the EMS value admits.
--   tolerance: max($abs_kwh, $rel x the larger of EMS and point estimate): site meters (CT
--     clamps) are good to ~2 %, interval boundaries blur.
--   The site meter sees more than the sessions deliver: the conversion loss of DC chargers
--     (up to $conversion_loss of what they deliver) and the chargers' standby draw
--     ($standby_kw_per_evse per registered EVSE), so the band's top is widened by both.
--   Band: [sessions least - tolerance, sessions most + loss x most of DC sessions + standby + tolerance].
--   Admitted session total (the joint test): [EMS - tolerance - standby - loss x most of DC
--     sessions, EMS + tolerance].
with
i as (
    select
        *,
        greatest($abs_kwh, $rel * greatest(abs(ems_ev_energy_kwh), abs(sessions_energy_kwh))) as tolerance_kwh,
        $standby_kw_per_evse * n_evses * (epoch(interval_end_at) - epoch(interval_start_at)) / 3600.0
            as standby_kwh
    from recon.site_intervals
    where ems_ev_energy_kwh is not null
)

select
    site_id, site_type, interval_start_at, interval_end_at, ems_ev_energy_kwh, ems_basis,
    sessions_energy_kwh, sessions_least_kwh, sessions_most_kwh, sessions_most_dc_kwh, sessions_even_kwh,
    n_sessions, session_keys, tolerance_kwh, standby_kwh,
    sessions_least_kwh - tolerance_kwh as band_lo_kwh,
    sessions_most_kwh + $conversion_loss * sessions_most_dc_kwh + standby_kwh + tolerance_kwh as band_hi_kwh,
    greatest(ems_ev_energy_kwh - tolerance_kwh - standby_kwh - $conversion_loss * sessions_most_dc_kwh, 0)
        as admit_lo_kwh,
    ems_ev_energy_kwh + tolerance_kwh as admit_hi_kwh,
    ems_ev_energy_kwh < sessions_least_kwh - tolerance_kwh
        or ems_ev_energy_kwh > sessions_most_kwh + $conversion_loss * sessions_most_dc_kwh + standby_kwh + tolerance_kwh
        as outside_band,
    -- how far the EMS value lies outside the band without tolerance: the energy in dispute
    case
        when ems_ev_energy_kwh < sessions_least_kwh then sessions_least_kwh - ems_ev_energy_kwh
        when ems_ev_energy_kwh > sessions_most_kwh + $conversion_loss * sessions_most_dc_kwh + standby_kwh
            then ems_ev_energy_kwh - sessions_most_kwh - $conversion_loss * sessions_most_dc_kwh - standby_kwh
        else 0
    end as outside_kwh
from i
