"""OCPI vocabularies (2.1.1, 2.2.1, 2.3.0): the enums staging validates against.

Names are snake_case, values the wire strings, as in mobilityhouse/ocpp. Where versions
differ the enum is the union, with the version noted, because one landing folder may hold
CDRs of several versions.
"""

from __future__ import annotations

from enum import StrEnum


class AuthMethod(StrEnum):
    """``AuthMethod``: how the session was authorised (``COMMAND`` since 2.2)."""

    auth_request = "AUTH_REQUEST"
    command = "COMMAND"
    whitelist = "WHITELIST"


class CdrDimensionType(StrEnum):
    """``CdrDimensionType``: what a charging period measured (``FLAT`` is 2.1.1 only)."""

    current = "CURRENT"
    energy = "ENERGY"
    energy_export = "ENERGY_EXPORT"
    energy_import = "ENERGY_IMPORT"
    flat = "FLAT"
    max_current = "MAX_CURRENT"
    min_current = "MIN_CURRENT"
    max_power = "MAX_POWER"
    min_power = "MIN_POWER"
    parking_time = "PARKING_TIME"
    power = "POWER"
    reservation_time = "RESERVATION_TIME"
    state_of_charge = "STATE_OF_CHARGE"
    time = "TIME"


class TariffType(StrEnum):
    """``TariffType`` (2.2): which customers a tariff is for."""

    ad_hoc_payment = "AD_HOC_PAYMENT"
    profile_cheap = "PROFILE_CHEAP"
    profile_fast = "PROFILE_FAST"
    profile_green = "PROFILE_GREEN"
    regular = "REGULAR"


class Status(StrEnum):
    """EVSE ``Status`` as published in a Location."""

    available = "AVAILABLE"
    blocked = "BLOCKED"
    charging = "CHARGING"
    inoperative = "INOPERATIVE"
    outoforder = "OUTOFORDER"
    planned = "PLANNED"
    removed = "REMOVED"
    reserved = "RESERVED"
    unknown = "UNKNOWN"


class TokenType(StrEnum):
    """``TokenType`` (``AD_HOC_USER`` and ``APP_USER`` since 2.2)."""

    ad_hoc_user = "AD_HOC_USER"
    app_user = "APP_USER"
    other = "OTHER"
    rfid = "RFID"


class WhitelistType(StrEnum):
    """``WhitelistType``: whether a CPO may authorise the token without asking."""

    always = "ALWAYS"
    allowed = "ALLOWED"
    allowed_offline = "ALLOWED_OFFLINE"
    never = "NEVER"


class PowerType(StrEnum):
    """``PowerType`` of a connector."""

    ac_1_phase = "AC_1_PHASE"
    ac_2_phase = "AC_2_PHASE"
    ac_2_phase_split = "AC_2_PHASE_SPLIT"
    ac_3_phase = "AC_3_PHASE"
    dc = "DC"


class ConnectorFormat(StrEnum):
    """``ConnectorFormat``: a socket, or a cable attached to the charger."""

    socket = "SOCKET"
    cable = "CABLE"


class ConnectorType(StrEnum):
    """``ConnectorType`` (2.2.1 list). 2.3.0 adds standards: staging warns, never rejects."""

    chademo = "CHADEMO"
    chaoji = "CHAOJI"
    domestic_a = "DOMESTIC_A"
    domestic_b = "DOMESTIC_B"
    domestic_c = "DOMESTIC_C"
    domestic_d = "DOMESTIC_D"
    domestic_e = "DOMESTIC_E"
    domestic_f = "DOMESTIC_F"
    domestic_g = "DOMESTIC_G"
    domestic_h = "DOMESTIC_H"
    domestic_i = "DOMESTIC_I"
    domestic_j = "DOMESTIC_J"
    domestic_k = "DOMESTIC_K"
    domestic_l = "DOMESTIC_L"
    domestic_m = "DOMESTIC_M"
    domestic_n = "DOMESTIC_N"
    domestic_o = "DOMESTIC_O"
    gbt_ac = "GBT_AC"
    gbt_dc = "GBT_DC"
    iec_60309_2_single_16 = "IEC_60309_2_single_16"
    iec_60309_2_three_16 = "IEC_60309_2_three_16"
    iec_60309_2_three_32 = "IEC_60309_2_three_32"
    iec_60309_2_three_64 = "IEC_60309_2_three_64"
    iec_62196_t1 = "IEC_62196_T1"
    iec_62196_t1_combo = "IEC_62196_T1_COMBO"
    iec_62196_t2 = "IEC_62196_T2"
    iec_62196_t2_combo = "IEC_62196_T2_COMBO"
    iec_62196_t3a = "IEC_62196_T3A"
    iec_62196_t3c = "IEC_62196_T3C"
    nema_5_20 = "NEMA_5_20"
    nema_6_30 = "NEMA_6_30"
    nema_6_50 = "NEMA_6_50"
    nema_10_30 = "NEMA_10_30"
    nema_10_50 = "NEMA_10_50"
    nema_14_30 = "NEMA_14_30"
    nema_14_50 = "NEMA_14_50"
    pantograph_bottom_up = "PANTOGRAPH_BOTTOM_UP"
    pantograph_top_down = "PANTOGRAPH_TOP_DOWN"
    tesla_r = "TESLA_R"
    tesla_s = "TESLA_S"


class TariffDimensionType(StrEnum):
    """OCPI ``TariffDimensionType``: what a price component charges for."""

    energy = "ENERGY"
    flat = "FLAT"
    parking_time = "PARKING_TIME"
    time = "TIME"


class DayOfWeek(StrEnum):
    """OCPI ``DayOfWeek``; ``index`` matches ``datetime.weekday()``."""

    monday = "MONDAY"
    tuesday = "TUESDAY"
    wednesday = "WEDNESDAY"
    thursday = "THURSDAY"
    friday = "FRIDAY"
    saturday = "SATURDAY"
    sunday = "SUNDAY"

    @property
    def index(self) -> int:
        return list(DayOfWeek).index(self)


class ReservationRestrictionType(StrEnum):
    """OCPI ``ReservationRestrictionType``."""

    reservation = "RESERVATION"
    reservation_expires = "RESERVATION_EXPIRES"


class SiteType(StrEnum):
    """chargeline registry ``site_type`` (not OCPI): where business impact is weighed."""

    public = "public"
    fleet = "fleet"
    microgrid = "microgrid"


def values(enum: type[StrEnum]) -> list[str]:
    """Wire strings of an enum, for ``isin`` checks and SQL ``in`` lists."""
    return [m.value for m in enum]
