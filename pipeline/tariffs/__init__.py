"""OCPI tariffs: the model, the pricing engine, periods from meter values, version history.

``price(periods, tariff, time_zone)`` is the reference every cost check is measured against;
``docs/tariff-engine.md`` explains how it reads the OCPI 2.2.1 text.
"""

from pipeline.tariffs.engine import PriceBreakdown, price
from pipeline.tariffs.model import (
    Cdr,
    CdrDimension,
    CdrDimensionType,
    ChargingPeriod,
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    cdr_from_ocpi,
    tariff_from_ocpi,
)

__all__ = [
    "Cdr",
    "CdrDimension",
    "CdrDimensionType",
    "ChargingPeriod",
    "Price",
    "PriceBreakdown",
    "PriceComponent",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "cdr_from_ocpi",
    "price",
    "tariff_from_ocpi",
]
