"""OCPP-J frames as the CSMS saw them: ``*.jsonl`` envelopes or ``ocpp`` logger ``*.log``.

Frames are formatted with f-strings (the hot path: millions per run). Payload
timestamps come from the charger's clock (a planted ``skew_s`` plus its own offset of
seconds, ``clock_offset_s``), ``received_at`` from the CSMS clock, a few seconds of
network jitter later. MeterValues follow the charger's sample interval (or none).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.generate.clock import iso, log_ts
from pipeline.generate.faults import NOISE_DUP_LINE, NOISE_RETRANSMIT, NOISE_START_RESEND
from pipeline.generate.network import Charger
from pipeline.generate.sessions import STEP_S, Session

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
STAMPED_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent"})


def sample_registers(s: Session, iv: int | None) -> list[tuple[float, int, int]]:
    """(sample time, register Wh, power W) every ``iv`` s while the session runs (none without ``iv``).

    Between the 60 s steps of the true series the register rises linearly (constant
    power within a step) and reads whole Wh, as meters do.
    """
    if iv is None:
        return []
    out = []
    prefix = [s.meter_start_wh]
    for wh in s.steps_wh:
        prefix.append(prefix[-1] + wh)
    n = len(s.steps_wh)
    k = 1
    while True:
        dt_s = k * iv
        t = s.start_at + dt_s
        if t >= s.stop_at - 1e-6:
            break
        j = int(dt_s // STEP_S)
        frac = (dt_s - j * STEP_S) / STEP_S
        reg = prefix[min(j, n)]
        if frac and j < n:
            reg += int(s.steps_wh[j] * frac)
        pi = min(n, math.ceil(dt_s / STEP_S)) - 1
        out.append((t, reg, s.power_w[pi] if pi >= 0 else 0))
        k += 1
    return out


class ChargerFrames:
    """Collects one charger's frames, then writes them per local day, time-ordered."""

    def __init__(self, charger: Charger, rng: random.Random, skew_s: float = 0.0,
                 clock_offset_s: float = 0.0, mv_interval_s: int | None = STEP_S) -> None:
        self.ch = charger
        self.rng = rng
        self.skew = skew_s + clock_offset_s
        self.mv_interval = mv_interval_s
        self.v201 = charger.ocpp_version == "2.0.1"
        self.lines: list[tuple[float, int, str]] = []
        self.n = 0
        self.msg = rng.randrange(1_000_000, 9_000_000)
        self.auth_count = 0  # answered Authorize calls
        self.auth_latencies: list[float] = []
        self.auth_unanswered = 0
        self.frames = 0
        self.stamped = 0  # frames whose payload carries the charger's own clock
        # receive times of the first and last stamped frame sent online (not queued)
        self.stamped_span: tuple[float, float] | None = None

    # -- primitives -----------------------------------------------------------
    def _id(self) -> str:
        self.msg += 1
        return f"{self.msg:x}" if self.v201 else str(self.msg)

    def ts(self, t: float) -> str:
        """A payload timestamp on the charger's own clock."""
        return iso(t + self.skew, self.ch.ts_style)

    def _emit(self, received: float, direction: str, frame: str) -> None:
        # ``self.skew`` only moves payload timestamps; received_at is the CSMS clock.
        ch = self.ch
        self.n += 1
        self.frames += 1
        if ch.file_format == "log":
            verb = "receive message" if direction == "in" else "send"
            line = f"{log_ts(received)} INFO (MainThread) [ocpp] {ch.charge_point_id}: {verb} {frame}"
        else:
            body = json.dumps(frame) if ch.frame_as_string else frame
            ver = f'"ocpp_version":"{ch.ocpp_version}",' if ch.tag_version else ""
            line = (f'{{"received_at":"{iso(received)}","charge_point_id":"{ch.charge_point_id}",'
                    f'"direction":"{direction}",{ver}"frame":{body}}}')
        self.lines.append((received, self.n, line))
        if self.rng.random() < NOISE_DUP_LINE:
            self.n += 1
            self.frames += 1
            self.lines.append((received, self.n, line))

    def _stamp_seen(self, rec: float, queued: bool) -> None:
        self.stamped += 1
        if not queued:
            a, b = self.stamped_span or (rec, rec)
            self.stamped_span = (min(a, rec), max(b, rec))

    def call(self, t: float, action: str, payload: str, answer: str | None, latency: float | None = None,
             retransmit: bool = True, queued: bool = False) -> float:
        """A CALL from the charger at true time ``t`` and the CSMS's CALLRESULT (none if ``answer`` is None)."""
        mid = self._id()
        rec = t + self.rng.uniform(0.05, 2.5)
        if action in STAMPED_ACTIONS:
            self._stamp_seen(rec, queued)
        frame = f'[2,"{mid}","{action}",{payload}]'
        self._emit(rec, "in", frame)
        if answer is None:
            return rec
        if retransmit and self.rng.random() < NOISE_RETRANSMIT:
            # Answer lost: the charger re-sends the identical CALL, the CSMS answers again.
            rec2 = rec + self.rng.uniform(5, 30)
            self._emit(rec + self.rng.uniform(0.02, 0.4), "out", f'[3,"{mid}",{answer}]')
            self._emit(rec2, "in", frame)
            rec = rec2
        out = rec + (latency if latency is not None else self.rng.uniform(0.02, 0.4))
        self._emit(out, "out", f'[3,"{mid}",{answer}]')
        return out

    # -- charger-level traffic --------------------------------------------------
    def boot(self, t: float, connectors: list[int], with_1970: bool) -> None:
        ch = self.ch
        if self.v201:
            payload = (f'{{"chargingStation":{{"model":"{ch.model}","vendorName":"{ch.vendor}"}},'
                       f'"reason":"PowerUp"}}')
        else:
            payload = f'{{"chargePointVendor":"{ch.vendor}","chargePointModel":"{ch.model}"}}'
        mid = self._id()
        rec = t + self.rng.uniform(0.05, 1.0)
        self._emit(rec, "in", f'[2,"{mid}","BootNotification",{payload}]')
        if with_1970:
            # Before the BootNotification answer sets its clock the charger reports 1970.
            for i, c in enumerate(connectors):
                fake = iso(float(i + 3), self.ch.ts_style)
                self._status_frame(rec + 0.1 + 0.05 * i, c, "Available", fake)
        done = rec + self.rng.uniform(0.1, 0.6)
        self._emit(done, "out", f'[3,"{mid}",{{"currentTime":"{iso(done)}","interval":1800,"status":"Accepted"}}]')
        for c in connectors:
            self.status(done + 1.0 + c * 0.2, c, "Available")

    def heartbeat(self, t: float) -> None:
        mid = self._id()
        rec = t + self.rng.uniform(0.05, 2.0)
        self._emit(rec, "in", f'[2,"{mid}","Heartbeat",{{}}]')
        out = rec + self.rng.uniform(0.02, 0.2)
        self._emit(out, "out", f'[3,"{mid}",{{"currentTime":"{iso(out)}"}}]')

    def _status_frame(self, rec: float, connector: int, status: str, ts: str, error: str = "NoError") -> None:
        mid = self._id()
        if self.v201:
            payload = (f'{{"timestamp":"{ts}","connectorStatus":"{status}","evseId":{connector},'
                       f'"connectorId":1}}')
        else:
            payload = (f'{{"connectorId":{connector},"errorCode":"{error}","status":"{status}",'
                       f'"timestamp":"{ts}"}}')
        self._emit(rec, "in", f'[2,"{mid}","StatusNotification",{payload}]')
        self._emit(rec + self.rng.uniform(0.02, 0.3), "out", f'[3,"{mid}",{{}}]')

    def status(self, t: float, connector: int, status: str, error: str = "NoError", queued: bool = False) -> None:
        """StatusNotification; 1.6 names (Available, Charging, Faulted...) mapped for 2.0.1."""
        if self.v201:
            status = {"Preparing": "Occupied", "Charging": "Occupied", "SuspendedEV": "Occupied",
                      "Finishing": "Occupied"}.get(status, status)
        rec = t + self.rng.uniform(0.05, 2.0)
        self._stamp_seen(rec, queued)
        self._status_frame(rec, connector, status, self.ts(t), error)

    # -- sessions -------------------------------------------------------------------
    def session(self, s: Session, site_rng: random.Random) -> None:
        """All frames of one session, with the session's planted fault, if any."""
        if self.v201:
            self._session_201(s)
        else:
            self._session_16(s)

    def _registers(self, s: Session) -> list[tuple[float, int, int]]:
        return sample_registers(s, self.mv_interval)

    def _energy_values(self, s: Session, regs: list[tuple[float, int, int]]) -> list[str]:
        """Energy register values as written, applying meter_anomaly forms."""
        vals = [str(r) for _, r, _ in regs]
        if s.has("meter_anomaly"):
            form = s.forms["meter_anomaly"]
            if form == "unit_confusion":
                vals = [f"{r / 1000:.3f}" for _, r, _ in regs]
            elif form == "rollback":
                k = s.extra["rollback_index"]
                # below the previous sample, so the register visibly runs backwards even
                # on a fast DC charger whose register gains more than the dip per minute
                vals[k] = str(regs[k - 1][1] - s.extra["rollback_wh"])
        return vals

    def _authorize(self, s: Session, payload: str, answer: str) -> None:
        """The session's Authorize calls: unanswered ones, then the one that was answered."""
        for t, latency in s.auth_calls:
            if latency is None:
                self.auth_unanswered += 1
                self.call(t, "Authorize", payload, None)
                continue
            self.auth_count += 1
            self.auth_latencies.append(latency)
            self.call(t, "Authorize", payload, answer, latency=latency)

    def _session_16(self, s: Session) -> None:
        c = s.evse.connector_id
        uid = s.token[0]
        self.status(s.plug_at, c, "Preparing")
        self._authorize(s, f'{{"idTag":"{uid}"}}', '{"idTagInfo":{"status":"Accepted"}}')
        tag_status = "Accepted"
        if s.has("token_invalid"):
            tag_status = "Blocked" if s.forms["token_invalid"] == "revoked" else "Invalid"
        start_payload = (f'{{"connectorId":{c},"idTag":"{uid}","meterStart":{s.meter_start_wh},'
                         f'"timestamp":"{self.ts(s.start_at)}"}}')
        answer = f'{{"idTagInfo":{{"status":"{tag_status}"}},"transactionId":{s.tx_id}}}'
        self.call(s.start_at, "StartTransaction", start_payload, answer, retransmit=False)
        if self.rng.random() < NOISE_START_RESEND:
            # Reconnected before the answer arrived: a new message id, the same transaction;
            # this CSMS recognises it and answers with the same transactionId.
            self.call(s.start_at + self.rng.uniform(20, 90), "StartTransaction", start_payload, answer,
                      retransmit=False)
        self.status(s.start_at + 1, c, "Charging")
        regs = self._registers(s)
        vals = self._energy_values(s, regs)
        for (t, _, w), v in zip(regs, vals, strict=True):
            ts = self.ts(t)
            self.call(t, "MeterValues",
                      f'{{"connectorId":{c},"transactionId":{s.tx_id},"meterValue":[{{"timestamp":"{ts}",'
                      f'"sampledValue":[{{"value":"{v}","context":"Sample.Periodic","measurand":"{ENERGY}",'
                      f'"location":"Outlet","unit":"Wh"}},{{"value":"{w}","context":"Sample.Periodic",'
                      f'"measurand":"{POWER}","location":"Outlet","unit":"W"}}]}}]}}', "{}")
        if s.charge_end_at < s.stop_at - 60:
            self.status(s.charge_end_at, c, "SuspendedEV")
        if not s.completed:
            # The StopTransaction was lost (dropped from a full offline queue), not the
            # charger: the connector still reports that the car has gone.
            self.status(s.stop_at + 1, c, "Finishing")
            self.status(s.stop_at + self.rng.uniform(5, 60), c, "Available")
            return
        meter_stop = s.meter_start_wh + s.energy_wh
        stop_ts = self.ts(s.stop_at)
        txdata = ""
        if self.ch.stop_with_txdata:
            txdata = (f',"transactionData":[{{"timestamp":"{self.ts(s.start_at)}","sampledValue":[{{"value":'
                      f'"{s.meter_start_wh}","context":"Transaction.Begin","measurand":"{ENERGY}","unit":"Wh"}}]}},'
                      f'{{"timestamp":"{stop_ts}","sampledValue":[{{"value":"{meter_stop}","context":'
                      f'"Transaction.End","measurand":"{ENERGY}","unit":"Wh"}}]}}]')
        payload = (f'{{"idTag":"{uid}","meterStop":{meter_stop},"timestamp":"{stop_ts}",'
                   f'"transactionId":{s.tx_id},"reason":"EVDisconnected"{txdata}}}')
        # An offline-queued stop keeps its true payload time but reaches the CSMS hours late.
        late = s.extra.get("late_s", 0.0)
        self.call(s.stop_at + late, "StopTransaction", payload, '{"idTagInfo":{"status":"Accepted"}}',
                  queued=bool(late))
        self.status(s.stop_at + 1 + late, c, "Finishing", queued=bool(late))
        self.status(s.stop_at + self.rng.uniform(5, 60) + late, c, "Available", queued=bool(late))

    def _mv201(self, t: float, v: str, w: int | None, context: str) -> str:
        pw = (f',{{"value":{w},"context":"{context}","measurand":"{POWER}","unitOfMeasure":{{"unit":"W"}}}}'
              if w is not None else "")
        return (f'[{{"timestamp":"{self.ts(t)}","sampledValue":[{{"value":{v},"context":"{context}",'
                f'"measurand":"{ENERGY}","unitOfMeasure":{{"unit":"Wh"}}}}{pw}]}}]')

    def _session_201(self, s: Session) -> None:
        c = s.evse.connector_id
        uid = s.token[0]
        tok = f'{{"idToken":"{uid}","type":"ISO14443"}}'
        self.status(s.plug_at, c, "Occupied")
        self._authorize(s, f'{{"idToken":{tok}}}', '{"idTokenInfo":{"status":"Accepted"}}')
        tag_status = "Accepted"
        if s.has("token_invalid"):
            tag_status = "Blocked" if s.forms["token_invalid"] == "revoked" else "Invalid"
        tx = f'"transactionId":"{s.tx_id}"'
        seq = 0
        self.call(s.start_at, "TransactionEvent",
                  f'{{"eventType":"Started","timestamp":"{self.ts(s.start_at)}","triggerReason":"Authorized",'
                  f'"seqNo":{seq},"transactionInfo":{{{tx},"chargingState":"Charging"}},"idToken":{tok},'
                  f'"evse":{{"id":{c},"connectorId":1}},'
                  f'"meterValue":{self._mv201(s.start_at, str(s.meter_start_wh), None, "Transaction.Begin")}}}',
                  f'{{"idTokenInfo":{{"status":"{tag_status}"}}}}', retransmit=False)
        regs = self._registers(s)
        vals = self._energy_values(s, regs)
        events: list[tuple[float, int, str | None, int]] = [(t, 0, v, w) for (t, _, w), v in zip(regs, vals, strict=True)]
        if s.charge_end_at < s.stop_at - 60:
            events.append((s.charge_end_at, 1, None, 0))
        for t, _, v, w in sorted(events, key=lambda e: (e[0], e[1])):
            seq += 1
            if v is None:
                self.call(t, "TransactionEvent",
                          f'{{"eventType":"Updated","timestamp":"{self.ts(t)}",'
                          f'"triggerReason":"ChargingStateChanged","seqNo":{seq},'
                          f'"transactionInfo":{{{tx},"chargingState":"SuspendedEV"}}}}', "{}")
                continue
            self.call(t, "TransactionEvent",
                      f'{{"eventType":"Updated","timestamp":"{self.ts(t)}","triggerReason":"MeterValuePeriodic",'
                      f'"seqNo":{seq},"transactionInfo":{{{tx}}},'
                      f'"meterValue":{self._mv201(t, v, w, "Sample.Periodic")}}}', "{}")
        if not s.completed:
            # The Ended event was lost; the EVSE still reports the connector free.
            self.status(s.stop_at + self.rng.uniform(5, 60), c, "Available")
            return
        seq += 1
        late = s.extra.get("late_s", 0.0)
        offline = ',"offline":true' if late else ""
        meter_stop = s.meter_start_wh + s.energy_wh
        self.call(s.stop_at + late, "TransactionEvent",
                  f'{{"eventType":"Ended","timestamp":"{self.ts(s.stop_at)}","triggerReason":"EVDeparted",'
                  f'"seqNo":{seq}{offline},"transactionInfo":{{{tx},"chargingState":"Idle",'
                  f'"stoppedReason":"EVDisconnected"}},'
                  f'"meterValue":{self._mv201(s.stop_at, str(meter_stop), None, "Transaction.End")}}}', "{}",
                  queued=bool(late))
        self.status(s.stop_at + self.rng.uniform(5, 60) + late, c, "Available", queued=bool(late))

    # -- output -------------------------------------------------------------------
    def write(self, ocpp_dir: Path, site_id: str, tz: ZoneInfo, malformed: dict[str, int],
              landing: Path) -> list[Path]:
        """Write per local day of ``received_at``; plant malformed lines in some jsonl files."""
        self.lines.sort(key=lambda x: (x[0], x[1]))
        ext = "log" if self.ch.file_format == "log" else "jsonl"
        by_day: dict[str, list[str]] = {}
        day_cache: dict[int, str] = {}
        for rec, _, line in self.lines:
            hour = int(rec // 3600)
            day = day_cache.get(hour)
            if day is None:
                day = dt.datetime.fromtimestamp(hour * 3600, tz).date().isoformat()
                day_cache[hour] = day
            by_day.setdefault(day, []).append(line)
        paths = []
        d = ocpp_dir / site_id / self.ch.charge_point_id
        d.mkdir(parents=True, exist_ok=True)
        for day, lines in by_day.items():
            p = d / f"{day}.{ext}"
            if ext == "jsonl" and malformed.get("rate", 0) and self.rng.random() < malformed["rate"]:
                bad = _malformed_ocpp(lines, self.rng)
                malformed.setdefault("files", {})[p.relative_to(landing).as_posix()] = len(bad)
                for pos, text in bad:
                    lines.insert(pos, text)
            with open(p, "w", encoding="utf-8", newline="\n") as f:
                f.write("\n".join(lines))
                f.write("\n")
            paths.append(p)
        return paths


def _malformed_ocpp(lines: list[str], rng: random.Random) -> list[tuple[int, str]]:
    """One or two broken lines: a truncated line, a wrong-typed field, garbage bytes."""
    out = []
    for _ in range(rng.randint(1, 2)):
        src = rng.choice(lines)
        kind = rng.randrange(3)
        if kind == 0:
            text = src[: max(10, len(src) // 2)]
        elif kind == 1:
            text = '{"received_at":12345,"charge_point_id":null,"direction":"sideways","frame":"not a frame"}'
        else:
            text = "\ufffd\x07garbage\x1b[0m\ufffd\ufffd"
        out.append((rng.randrange(len(lines) + 1), text))
    return sorted(out, key=lambda x: x[0], reverse=True)
