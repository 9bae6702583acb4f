"""One Dagster asset check per failure class, reading the findings in ``recon.flags``.

A finding is a result, not a pipeline failure: checks are WARN unless their rule is
blocking. Metadata carries the count, the tolerances and up to 10 sample findings.
"""

import dagster as dg

from checks import collect_rules
from pipeline.flags import FlagRule, rule_params
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import table_exists


def make_flag_check(rule: FlagRule) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey("recon_flags"),
        name=rule.check,
        blocking=rule.blocking,
        description=rule.description or f"findings of {rule.check}",
    )
    def _check(duckdb: WarehouseResource, landing: LandingResource) -> dg.AssetCheckResult:
        options = landing.settings().options
        with duckdb.get_connection() as conn:
            if not table_exists(conn, "recon.flags"):
                n, sample = 0, []
            else:
                n = conn.execute('select count(*) from recon.flags where "check" = $c', {"c": rule.check}).fetchone()[0]
                sample = conn.execute(
                    """select session_key, severity, site_id, charge_point_id, money_at_risk, explanation
                       from recon.flags where "check" = $c order by money_at_risk desc nulls last limit 10""",
                    {"c": rule.check},
                ).fetchall()
        lines = ["| session | severity | site | charger | money | explanation |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in sample]
        return dg.AssetCheckResult(
            passed=n == 0,
            severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "findings": n,
                "tolerances": {k: str(v) for k, v in rule_params(rule, options).items()},
                "sample": dg.MetadataValue.md("\n".join(lines)),
            },
        )

    return _check


flag_checks = [make_flag_check(rule) for rule in collect_rules()]
