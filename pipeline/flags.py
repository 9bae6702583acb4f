"""The reconciliation-check framework: rules that return findings, and ``recon.flags``.

A failure class is a ``FlagRule``: a SQL file (a bare ``SELECT``) returning one row per
finding with the product contract's ``recon.flags`` columns, plus where its tolerances come from. Rules are
declared in the ``checks`` package (a module-level ``RULES`` list, collected by
``checks.collect_rules``); this module builds ``recon.flags`` from the rules it is given.
It never imports ``checks``: imports go downward only, so the ``recon_flags`` asset
collects the rules and passes them in.

The framework owns what every check shares, so a rule's SQL only says what is wrong:
- ``check`` and ``severity``: severity comes from ``[checks.<name>.severity]`` in the
  options by site type (``public``/``fleet``/``microgrid``/``default``), because the same
  finding weighs differently at a depot and at a public plaza (contract §3).
- tolerances: every other key of ``[checks.<name>]`` is bound as ``$<key>``.
- ``flag_id``: a stable identity (check + subject + interval), so the review queue can
  follow a finding across reruns.
- one root cause, one finding: a rule declares which session findings its own findings may
  follow from (``caused_by``). After every rule ran, a finding whose session (``session_key``,
  or one of ``evidence.may_follow_from``: the sessions whose record, were it wrong, explains
  the finding) carries such a root finding is kept at ``info`` with
  ``evidence.caused_by`` naming the root (its ``flag_id`` and check) and the severity it
  would have had; set-based, once, for every rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import duckdb

from pipeline.sql import execute, load_sql, table_exists

# What a rule's SQL must return (``site_type`` is used for severity, then kept).
FINDING_COLUMNS = (
    "session_key", "site_id", "site_type", "charge_point_id", "evse_uid",
    "ocpp_transaction_id", "backend_session_id", "cdr_id", "interval_start",
    "money_at_risk", "currency", "evidence", "explanation",
)
SEVERITIES = ("info", "warn", "error")

FLAGS_DDL = """
create table if not exists recon.flags (
    flag_id varchar, session_key varchar, "check" varchar, severity varchar,
    site_id varchar, site_type varchar, charge_point_id varchar, evse_uid varchar,
    ocpp_transaction_id varchar, backend_session_id varchar, cdr_id varchar,
    interval_start timestamptz, money_at_risk decimal(18, 4), currency varchar,
    evidence json, explanation varchar, flagged_at timestamptz
)"""


@dataclass(frozen=True)
class FlagRule:
    """One failure class.

    Parameters
    ----------
    check : the contract's check name (``recon.flags.check``).
    sql : repository-relative path of the SELECT returning ``FINDING_COLUMNS``; by
        convention ``checks/sql/<check>.sql``, which is the default.
    guards : asset key the Dagster asset check is attached to (besides ``recon_flags``).
    requires : tables the rule reads that may legitimately be absent (optional inputs such
        as ``staging.tokens``); the rule yields nothing when one is missing.
    blocking : whether a finding must stop downstream publishing.
    description : one line for the Dagster UI and docs.
    params : optional function of the options returning extra bound parameters that are not
        tolerances (e.g. the token hash key, a mapping table), so rules never format values.
    caused_by : checks whose session findings explain this rule's findings on the same
        session(s); such findings are demoted to ``info`` with ``evidence.caused_by``.
    """

    check: str
    sql: str = ""
    guards: str = "recon_flags"
    requires: tuple[str, ...] = ()
    blocking: bool = False
    description: str = ""
    params: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    caused_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.sql:
            object.__setattr__(self, "sql", f"checks/sql/{self.check}.sql")


def rule_params(rule: FlagRule, options: dict[str, Any]) -> dict[str, Any]:
    """Tolerances of a rule: its ``[checks.<name>]`` keys except the severity table."""
    section = options.get("checks", {}).get(rule.check, {})
    return {k: v for k, v in section.items() if k != "severity"}


def severity_map(rule: FlagRule, options: dict[str, Any]) -> dict[str, str]:
    section = options.get("checks", {}).get(rule.check, {}).get("severity", {})
    out = {"default": "warn", **section}
    bad = {k: v for k, v in out.items() if v not in SEVERITIES}
    if bad:
        raise ValueError(f"{rule.check}: unknown severity {bad}")
    return out


def run_rule(conn: duckdb.DuckDBPyConnection, rule: FlagRule, options: dict[str, Any]) -> int:
    """Insert the rule's findings into ``recon.flags``; returns how many."""
    if not all(table_exists(conn, t) for t in rule.requires):
        return 0
    sev = severity_map(rule, options)
    body = load_sql(rule.sql)
    params = {
        **rule_params(rule, options),
        **(rule.params(options) if rule.params else {}),
        "_check": rule.check,
        "_sev_public": sev.get("public", sev["default"]),
        "_sev_fleet": sev.get("fleet", sev["default"]),
        "_sev_microgrid": sev.get("microgrid", sev["default"]),
        "_sev_default": sev["default"],
    }
    before = conn.execute('select count(*) from recon.flags where "check" = $c', {"c": rule.check}).fetchone()[0]
    execute(conn, f"""
        insert into recon.flags by name
        with findings as (
        {body}
        )
        select
            md5(concat_ws('|', $_check, coalesce(session_key, ''), coalesce(charge_point_id, ''),
                coalesce(evse_uid, ''), coalesce(site_id, ''), coalesce(cast(interval_start as varchar), ''),
                coalesce(cdr_id, ''))) as flag_id,
            session_key, $_check as "check",
            case site_type when 'public' then $_sev_public when 'fleet' then $_sev_fleet
                 when 'microgrid' then $_sev_microgrid else $_sev_default end as severity,
            site_id, site_type, charge_point_id, evse_uid,
            cast(ocpp_transaction_id as varchar) as ocpp_transaction_id,
            cast(backend_session_id as varchar) as backend_session_id, cdr_id,
            cast(interval_start as timestamptz) as interval_start,
            cast(round(abs(coalesce(money_at_risk, 0)), 4) as decimal(18, 4)) as money_at_risk,
            currency, cast(evidence as json) as evidence, explanation, now() as flagged_at
        from findings
    """, params)
    after = conn.execute('select count(*) from recon.flags where "check" = $c', {"c": rule.check}).fetchone()[0]
    return after - before


# A derived finding's sessions: its own, or the ones its evidence says it may follow from.
ROOT_CAUSES_SQL = """
update recon.flags as d
set severity = 'info',
    evidence = json_merge_patch(d.evidence, json_object('caused_by', c.cause))
from (
    select
        x.flag_id,
        arg_min(json_object('flag_id', r.flag_id, 'check', r."check", 'session_key', r.session_key,
                            'severity_before', x.severity), r.flag_id) as cause
    from (
        select flag_id, severity, session_key as subject
        from recon.flags where "check" = $check and session_key is not null
        union all
        select flag_id, severity,
            unnest(coalesce(try_cast(json_extract(evidence, '$.may_follow_from') as varchar[]), [])) as subject
        from recon.flags where "check" = $check
    ) as x
    inner join recon.flags as r on r.session_key = x.subject
    where list_contains($roots, r."check") and r.flag_id <> x.flag_id
    group by x.flag_id
) as c
where d.flag_id = c.flag_id and d."check" = $check
"""


def apply_root_causes(conn: duckdb.DuckDBPyConnection, rules: Iterable[FlagRule]) -> dict[str, int]:
    """Demote findings that follow from a root session finding; how many per check."""
    demoted: dict[str, int] = {}
    for rule in rules:
        if not rule.caused_by:
            continue
        before = conn.execute(
            """select count(*) from recon.flags where "check" = $c and evidence ->> '$.caused_by' is not null""",
            {"c": rule.check}).fetchone()[0]
        execute(conn, ROOT_CAUSES_SQL, {"check": rule.check, "roots": list(rule.caused_by)})
        after = conn.execute(
            """select count(*) from recon.flags where "check" = $c and evidence ->> '$.caused_by' is not null""",
            {"c": rule.check}).fetchone()[0]
        demoted[rule.check] = after - before
    return demoted


def build_flags(
    conn: duckdb.DuckDBPyConnection, options: dict[str, Any], rules: Iterable[FlagRule]
) -> dict[str, int]:
    """Rebuild ``recon.flags`` from ``rules`` in one transaction; counts per check."""
    rules = list(rules)
    counts: dict[str, int] = {}
    conn.execute("begin transaction")
    try:
        conn.execute(FLAGS_DDL)
        conn.execute("delete from recon.flags")
        for rule in rules:
            counts[rule.check] = run_rule(conn, rule, options)
        apply_root_causes(conn, rules)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return counts
