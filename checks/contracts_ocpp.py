"""Contracts (pandera polars models) of the OCPP staging tables.

Belongs here: one ``DataFrameModel`` per OCPP staging table that has a contract;
``assets/staging_ocpp.py`` enforces them with ``pipeline.contracts.enforce``. Only the
columns a model names are read, so the JSON payload never leaves DuckDB.
"""

import pandera.polars as pa
import polars as pl

from pipeline.models.ocpp import Version


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
