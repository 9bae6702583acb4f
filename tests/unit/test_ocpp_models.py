"""OCPP vocabulary: taken from the ocpp package, wire strings as values."""

import pytest

from pipeline.models.ocpp import (
    ENERGY_REGISTER,
    MILLI_UNITS,
    V16_ONLY_ACTIONS,
    V201_ONLY_ACTIONS,
    Measurand,
    MessageType,
    default_unit,
)


def test_version_only_actions():
    assert "TransactionEvent" in V201_ONLY_ACTIONS and "RequestStartTransaction" in V201_ONLY_ACTIONS
    assert "StartTransaction" in V16_ONLY_ACTIONS
    assert "Authorize" not in V201_ONLY_ACTIONS and "Authorize" not in V16_ONLY_ACTIONS


def test_wire_strings():
    assert ENERGY_REGISTER == "Energy.Active.Import.Register"
    assert Measurand.power_active_import == "Power.Active.Import"
    assert MessageType(3) is MessageType.call_result
    assert set(MILLI_UNITS) == {"Wh", "W", "varh", "var", "VA", "VAh"}


@pytest.mark.parametrize(("measurand", "unit"), [
    (None, "Wh"), ("Energy.Active.Import.Register", "Wh"), ("Energy.Reactive.Import.Register", "varh"),
    ("Power.Active.Import", "W"), ("Power.Factor", None), ("Current.Import", "A"), ("SoC", "Percent"),
    ("Voltage", "V"),
])
def test_default_unit(measurand, unit):
    assert default_unit(measurand) == unit
