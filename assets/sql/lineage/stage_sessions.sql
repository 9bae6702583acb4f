-- lineage.stage_sessions: sessions after OCPP <-> backend linking, before CDRs join them.
-- session_ref is `backend:<session_id>` when the session has a backend row, else
-- `ocpp:<ocpp_ref>`: the record a CDR link is drawn from.
select
    case when b.session_id is not null then 'backend' else 'ocpp' end as left_kind,
    coalesce(b.session_id, o.ocpp_ref) as left_id,
    case when b.session_id is not null then 'backend:' || b.session_id else 'ocpp:' || o.ocpp_ref end as session_ref,
    o.ocpp_ref,
    b.session_id as backend_session_id,
    coalesce(o.charge_point_id, b.charge_point_id) as charge_point_id,
    coalesce(o.connector_id, b.connector_id) as connector_id,
    b.ocpi_session_id as backend_ocpi_session_id,
    b.cdr_id as backend_cdr_id,
    b.started_at as backend_started_at,
    b.stopped_at as backend_stopped_at,
    b.energy_kwh as backend_energy_kwh,
    b.token_hash as backend_token_hash,
    o.started_at as ocpp_started_at,
    o.started_csms_at as ocpp_started_csms_at,
    o.stopped_at as ocpp_stopped_at,
    o.stopped_csms_at as ocpp_stopped_csms_at,
    o.energy_kwh as ocpp_energy_kwh,
    o.token_hash as ocpp_token_hash,
    coalesce(b.match_at, o.match_at) as match_at,
from lineage.match_ocpp as o
full outer join lineage.link_ocpp_backend as l on l.left_id = o.ocpp_ref
full outer join lineage.match_backend as b on b.session_id = l.right_id
