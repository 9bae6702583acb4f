"""OCPP 1.6J and 2.0.1 vocabulary the pipeline reads: message types, actions, measurands,
units, reading contexts, stop reasons, transaction event types and connector status.

Belongs here: protocol words and the small facts derived from them (which actions exist
only in 2.0.1, which units are a thousandth of their base). The enums come from the
``ocpp`` package (mobilityhouse/ocpp), whose members are snake_case names with the wire
strings as values; nothing here re-types the specification. Parsing lives in the staging
SQL and ``pipeline.parsing.ocpp_units``.
"""

from __future__ import annotations

from enum import IntEnum

from ocpp.v16 import enums as v16
from ocpp.v201 import enums as v201

# Re-exported under the names the spec uses, so callers do not need to know which
# ocpp-package module a word lives in.
Action16 = v16.Action
Action201 = v201.Action
Measurand = v201.MeasurandEnumType  # a superset of 1.6's Measurand, same wire strings
Measurand16 = v16.Measurand
UnitOfMeasure16 = v16.UnitOfMeasure
UnitOfMeasure201 = v201.StandardizedUnitsOfMeasureType
ReadingContext = v16.ReadingContext  # identical wire strings in 2.0.1
Phase = v16.Phase
Location = v16.Location
StopReason16 = v16.Reason
StopReason201 = v201.ReasonEnumType
TransactionEventType = v201.TransactionEventEnumType
TriggerReason = v201.TriggerReasonEnumType
ChargingState = v201.ChargingStateEnumType
ChargePointStatus16 = v16.ChargePointStatus
ConnectorStatus201 = v201.ConnectorStatusEnumType
AuthorizationStatus16 = v16.AuthorizationStatus
AuthorizationStatus201 = v201.AuthorizationStatusEnumType
RegistrationStatus = v16.RegistrationStatus


class MessageType(IntEnum):
    """OCPP-J message type number, the first element of every frame (OCPP-J §4.1.3)."""

    call = 2
    call_result = 3
    call_error = 4


class Version:
    """The protocol versions chargeline reads, as written in ``ocpp_version``."""

    v16 = "1.6"
    v201 = "2.0.1"
    all = ("1.6", "2.0.1")


# 1.6 and 2.0.1 share many action names (Authorize, BootNotification, ...); only a
# 2.0.1-only action proves a charger speaks 2.0.1 when no version was given.
V201_ONLY_ACTIONS: tuple[str, ...] = tuple(sorted({a.value for a in Action201} - {a.value for a in Action16}))
V16_ONLY_ACTIONS: tuple[str, ...] = tuple(sorted({a.value for a in Action16} - {a.value for a in Action201}))

# Actions only a charging station sends (1.6 §4 "Operations initiated by Charge Point",
# 2.0.1 the station-initiated messages; DataTransfer goes both ways, mostly from the
# station). A bare frame log (no envelope) has no direction: a CALL of these came in.
CHARGER_INITIATED_ACTIONS: tuple[str, ...] = (
    "Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer",
    "DiagnosticsStatusNotification", "FirmwareStatusNotification", "Get15118EVCertificate",
    "GetCertificateStatus", "Heartbeat", "LogStatusNotification", "MeterValues",
    "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages",
    "NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport",
    "NotifyReport", "PublishFirmwareStatusNotification", "ReportChargingProfiles",
    "ReservationStatusUpdate", "SecurityEventNotification", "SignCertificate",
    "StartTransaction", "StatusNotification", "StopTransaction", "TransactionEvent",
)

# The register every energy figure is taken from; also the spec default when a sampled
# value names no measurand (1.6 §7.31, 2.0.1 SampledValueType).
ENERGY_REGISTER = Measurand.energy_active_import_register.value
POWER_IMPORT = Measurand.power_active_import.value

# Units that are a thousandth of the unit chargeline stores (kWh, kW, kvarh, kvar, kVA,
# kVAh). The spec default unit is Wh for energy measurands.
MILLI_UNITS: tuple[str, ...] = (
    UnitOfMeasure201.wh.value, UnitOfMeasure201.w.value, UnitOfMeasure201.varh.value,
    UnitOfMeasure201.var.value, UnitOfMeasure201.va.value, UnitOfMeasure201.vah.value,
)


def default_unit(measurand: str | None) -> str | None:
    """The unit a sampled value has when it names none.

    The spec only fixes Wh for energy registers; chargers that omit the unit on other
    measurands send the base SI unit in practice (W, A, V, Percent for SoC).
    """
    m = measurand or ENERGY_REGISTER
    if m.startswith("Energy.Reactive"):
        return UnitOfMeasure201.varh.value
    if m.startswith("Energy.Apparent"):
        return UnitOfMeasure201.vah.value
    if m.startswith("Energy."):
        return UnitOfMeasure201.wh.value
    if m.startswith("Power.Reactive"):
        return UnitOfMeasure201.var.value
    if m == Measurand.power_factor.value:
        return None
    if m.startswith("Power."):
        return UnitOfMeasure201.w.value
    if m.startswith("Current."):
        return UnitOfMeasure201.a.value
    if m == Measurand.voltage.value:
        return UnitOfMeasure201.v.value
    if m == Measurand.soc.value:
        return UnitOfMeasure201.percent.value
    if m == Measurand.frequency.value:
        return UnitOfMeasure201.hz.value
    return None


# Stop reasons of both versions (wire strings), for validating stop_reason.
STOP_REASONS: tuple[str, ...] = tuple(sorted({r.value for r in StopReason16} | {r.value for r in StopReason201}))
STATUSES: tuple[str, ...] = tuple(sorted({s.value for s in ChargePointStatus16} | {s.value for s in ConnectorStatus201}))
