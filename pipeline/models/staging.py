"""Row models of the staging tables: one pandera polars ``DataFrameModel`` per table.

Belongs here: what a staged row must satisfy (required fields, OCPI and OCPP vocabularies,
ranges, plausible times, stop not before start). ``pipeline.quarantine.enforce`` applies a
model and moves failing rows to ``quarantine.rejects``; typing (does the text parse at all)
happens in the staging SQL. The models live in ``pipeline`` because the staging assets and
the checks both use them and imports go downward only. Models are not Dagster definitions.
OCPP models name only the columns they check, so the JSON payload never leaves DuckDB.
"""

from datetime import UTC, datetime
from typing import Annotated

import pandera.polars as pa
import polars as pl

from pipeline.models.ocpi import (
    AuthMethod,
    CdrDimensionType,
    SiteType,
    Status,
    TariffType,
    TokenType,
    WhitelistType,
    values,
)
from pipeline.models.ocpp import Version

# Before 2000 no charging data of ours exists: such a time is an epoch default (1970) or
# a dead RTC. From 2090 on it is an unset far-future sentinel (2099-12-31, 9999-12-31) or a
# typo. Neither bound moves with the run's clock: replayed and test data of any year (2035
# as well as 2019) must stage like today's.
PLAUSIBLE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
PLAUSIBLE_UNTIL = datetime(2090, 1, 1, tzinfo=UTC)

UtcTime = Annotated[pl.Datetime, "us", "UTC"]
StrList = Annotated[pl.List, pl.String]


def _plausible(cls, data) -> pl.LazyFrame:
    col = pl.col(data.key)
    return data.lazyframe.select(col.is_null() | ((col >= PLAUSIBLE_FROM) & (col < PLAUSIBLE_UNTIL)))


def _not_before(later: str, earlier: str):
    def check(cls, data) -> pl.LazyFrame:
        a, b = pl.col(later), pl.col(earlier)
        return data.lazyframe.select(a.is_null() | b.is_null() | (a >= b))
    return check


class _Staged(pa.DataFrameModel):
    source_file: str = pa.Field(nullable=False)
    record_no: int = pa.Field(nullable=True)

    class Config:
        strict = False


class StgSites(_Staged):
    site_id: str = pa.Field(nullable=False)
    site_type: str = pa.Field(nullable=False, isin=values(SiteType))
    time_zone: str = pa.Field(nullable=False)
    name: str = pa.Field(nullable=True)
    country: str = pa.Field(nullable=True)


class StgEvses(_Staged):
    charge_point_id: str = pa.Field(nullable=False)
    connector_id: pl.Int32 = pa.Field(nullable=False, ge=0)
    site_id: str = pa.Field(nullable=False)
    location_id: str = pa.Field(nullable=True)
    evse_uid: str = pa.Field(nullable=True)
    evse_id: str = pa.Field(nullable=True)
    max_power_kw: float = pa.Field(nullable=True, gt=0, le=2000)


class StgBackendSessions(_Staged):
    session_id: str = pa.Field(nullable=False)
    charge_point_id: str = pa.Field(nullable=False)
    connector_id: pl.Int32 = pa.Field(nullable=False, ge=0)
    started_at: UtcTime = pa.Field(nullable=False)
    stopped_at: UtcTime = pa.Field(nullable=True)
    # A running session (no stop yet) may have no energy yet; a stopped one must.
    energy_kwh: float = pa.Field(nullable=True, ge=0)
    amount: float = pa.Field(nullable=True)
    currency: str = pa.Field(nullable=True, str_matches=r"^[A-Z]{3}$")

    plausible_time = pa.check("started_at", "stopped_at", name="plausible_time")(_plausible)
    stop_not_before_start = pa.dataframe_check(name="stopped_at_not_before_started_at")(
        _not_before("stopped_at", "started_at"))

    @pa.dataframe_check(name="energy_required_once_stopped")
    def _energy(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("stopped_at").is_null() | pl.col("energy_kwh").is_not_null())


class StgCdrs(_Staged):
    cdr_id: str = pa.Field(nullable=False)
    country_code: str = pa.Field(nullable=True)
    party_id: str = pa.Field(nullable=True)
    start_at: UtcTime = pa.Field(nullable=False)
    end_at: UtcTime = pa.Field(nullable=False)
    last_updated_at: UtcTime = pa.Field(nullable=True)
    auth_method: str = pa.Field(nullable=True, isin=values(AuthMethod))
    token_type: str = pa.Field(nullable=True, isin=values(TokenType))
    currency: str = pa.Field(nullable=False, str_matches=r"^[A-Z]{3}$")
    # The sign depends on ``credit`` (checked below): a credit CDR carries the original's
    # amounts negated (OCPI 2.2.1 mod_cdrs, "Credit CDRs").
    total_cost_excl_vat: float = pa.Field(nullable=False)
    total_cost_incl_vat: float = pa.Field(nullable=True)
    total_energy_kwh: float = pa.Field(nullable=False)
    total_time_h: float = pa.Field(nullable=True)
    total_parking_time_h: float = pa.Field(nullable=True)
    credit: bool = pa.Field(nullable=False)
    credit_reference_id: str = pa.Field(nullable=True)
    ocpi_version: str = pa.Field(nullable=False, isin=["2.1.1", "2.2.1", "2.3.0"])

    plausible_time = pa.check("start_at", "end_at", name="plausible_time")(_plausible)
    end_not_before_start = pa.dataframe_check(name="end_at_not_before_start_at")(
        _not_before("end_at", "start_at"))

    @pa.dataframe_check(name="party_required_since_2_2")
    def _party(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("ocpi_version") == "2.1.1")
                                     | (pl.col("country_code").is_not_null() & pl.col("party_id").is_not_null()))

    @pa.dataframe_check(name="amounts_not_negative_unless_credit")
    def _sign(cls, data) -> pl.LazyFrame:
        # OCPI negates only the money of a credit; some CPOs negate its volumes as well, and
        # neither is a reason to lose the record. A normal CDR with a negative figure is.
        columns = ("total_cost_excl_vat", "total_cost_incl_vat", "total_energy_kwh", "total_time_h",
                   "total_parking_time_h")
        ok = pl.lit(True)
        for c in columns:
            ok = ok & (pl.col(c).is_null() | (pl.col(c) >= 0))
        return data.lazyframe.select(pl.col("credit") | ok)

    @pa.dataframe_check(name="credit_needs_credit_reference_id")
    def _credit(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(~pl.col("credit") | pl.col("credit_reference_id").is_not_null())


class StgCdrChargingPeriods(_Staged):
    cdr_id: str = pa.Field(nullable=False)
    period_no: pl.Int32 = pa.Field(nullable=False, ge=1)
    start_at: UtcTime = pa.Field(nullable=False)
    dimension: str = pa.Field(nullable=False, isin=values(CdrDimensionType))
    volume: float = pa.Field(nullable=False)

    plausible_time = pa.check("start_at", name="plausible_time")(_plausible)


class StgTariffVersions(_Staged):
    country_code: str = pa.Field(nullable=True)
    party_id: str = pa.Field(nullable=True)
    tariff_id: str = pa.Field(nullable=False)
    last_updated_at: UtcTime = pa.Field(nullable=False)
    currency: str = pa.Field(nullable=False, str_matches=r"^[A-Z]{3}$")
    tariff_type: str = pa.Field(nullable=True, isin=values(TariffType))
    start_at: UtcTime = pa.Field(nullable=True)
    end_at: UtcTime = pa.Field(nullable=True)
    valid_from_at: UtcTime = pa.Field(nullable=False)
    min_price_excl_vat: float = pa.Field(nullable=True, ge=0)
    max_price_excl_vat: float = pa.Field(nullable=True, ge=0)
    elements: str = pa.Field(nullable=False)

    plausible_time = pa.check("last_updated_at", "start_at", name="plausible_time")(_plausible)
    end_not_before_start = pa.dataframe_check(name="end_at_not_before_start_at")(_not_before("end_at", "start_at"))


class StgEmsIntervals(_Staged):
    site_id: str = pa.Field(nullable=False)
    charge_point_id: str = pa.Field(nullable=True)
    interval_start_at: UtcTime = pa.Field(nullable=False)
    interval_end_at: UtcTime = pa.Field(nullable=False)
    ev_energy_kwh: float = pa.Field(nullable=False, ge=0)
    pv_kwh: float = pa.Field(nullable=True, ge=0)
    battery_discharge_kwh: float = pa.Field(nullable=True, ge=0)
    battery_charge_kwh: float = pa.Field(nullable=True, ge=0)
    ev_setpoint_kw: float = pa.Field(nullable=True, ge=0)

    plausible_time = pa.check("interval_start_at", name="plausible_time")(_plausible)

    @pa.dataframe_check(name="interval_end_after_start")
    def _order(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("interval_end_at") > pl.col("interval_start_at"))


class StgLocationEvseStatus(_Staged):
    country_code: str = pa.Field(nullable=True)
    party_id: str = pa.Field(nullable=True)
    location_id: str = pa.Field(nullable=False)
    evse_uid: str = pa.Field(nullable=False)
    status: str = pa.Field(nullable=False, isin=values(Status))
    snapshot_at: UtcTime = pa.Field(nullable=False)

    plausible_time = pa.check("snapshot_at", name="plausible_time")(_plausible)


class StgTokens(_Staged):
    country_code: str = pa.Field(nullable=True)
    party_id: str = pa.Field(nullable=True)
    token_uid_hash: str = pa.Field(nullable=False)
    type: str = pa.Field(nullable=False, isin=values(TokenType))
    valid: bool = pa.Field(nullable=False)
    whitelist: str = pa.Field(nullable=True, isin=values(WhitelistType))
    last_updated_at: UtcTime = pa.Field(nullable=False)

    plausible_time = pa.check("last_updated_at", name="plausible_time")(_plausible)


# OCPP staging and the transactions built from it (enforced in assets/staging_ocpp.py).


class StgOcppFrames(pa.DataFrameModel):
    """``staging.ocpp_frames``: a frame is usable when it has a charger, a time, a side,
    a known message type and an id; a CALL also names its action."""

    charge_point_id: str = pa.Field(nullable=False, str_length={"min_value": 1, "max_value": 128})
    received_at: pl.Datetime(time_zone="UTC") = pa.Field(nullable=False)
    direction: str = pa.Field(isin=["in", "out"])
    msg_type: pl.Int32 = pa.Field(isin=[2, 3, 4])
    msg_id: str = pa.Field(nullable=False, str_length={"min_value": 1, "max_value": 128})
    action: str = pa.Field(nullable=True)
    ocpp_version: str = pa.Field(isin=list(Version.all))
    is_retransmit: bool = pa.Field(nullable=False)

    @pa.dataframe_check(element_wise=False)
    def call_has_action(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("msg_type") != 2) | pl.col("action").is_not_null())

    class Config:
        strict = False
        coerce = False


class StgOcppMeterValues(pa.DataFrameModel):
    """``staging.ocpp_meter_values``: energy registers are never negative once typed."""

    charge_point_id: str = pa.Field(nullable=False)
    measurand: str = pa.Field(nullable=False)
    origin: str = pa.Field(isin=["MeterValues", "StopTransaction", "TransactionEvent"])
    value: float = pa.Field(nullable=True)

    class Config:
        strict = False


class LineageTransactions(pa.DataFrameModel):
    """``lineage.transactions``: one row per charger transaction, with a known basis."""

    charge_point_id: str = pa.Field(nullable=False)
    ocpp_version: str = pa.Field(isin=list(Version.all))
    energy_basis: str = pa.Field(isin=["register", "meter_values", "transaction_data", "none"])
    has_start: bool = pa.Field(nullable=False)
    has_stop: bool = pa.Field(nullable=False)

    @pa.dataframe_check(element_wise=False)
    def start_or_stop(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("has_start") | pl.col("has_stop"))

    class Config:
        strict = False


MODELS: dict[str, type[pa.DataFrameModel]] = {
    "staging.sites": StgSites,
    "staging.evses": StgEvses,
    "staging.backend_sessions": StgBackendSessions,
    "staging.cdrs": StgCdrs,
    "staging.cdr_charging_periods": StgCdrChargingPeriods,
    "staging.tariff_versions": StgTariffVersions,
    "staging.ems_intervals": StgEmsIntervals,
    "staging.location_evse_status": StgLocationEvseStatus,
    "staging.tokens": StgTokens,
}
