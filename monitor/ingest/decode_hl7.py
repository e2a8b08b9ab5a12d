"""HL7 v2 ORU^R01 from patient monitors (IHE PCD-01) -> Observations.

The message: segments separated by CR (LF and CRLF tolerated, MLLP framing bytes 0x0b and
0x1c removed); separators from MSH-1 and MSH-2; MSH-9 must be ORU^R01. MSH-11 processing
ID D (debugging) or T (training) rejects the message: it is not patient data. Each OBX:
- OBX-3: an MDC code (system MDC; the numeric code decides, the MDC_ name is a fallback
  for codes we do not know, and the two must not name different vitals) or a LOINC code
  (system LN). Codes CRSWatch does not read (device hierarchy, alarms, waveforms...) are
  ignored, unless nothing usable is left. The MDC table is in monitor/clinical/codes.py.
- OBX-11 (HL7 table 0085), decided per status: F final, C corrected, R not verified (what
  monitors send for periodic numerics), P preliminary, S partial and U (changed to final)
  are used. X (cannot be obtained), D (deleted), W (wrong), I (in process), N (not asked)
  and O (order detail) are not results: the OBX is skipped. Anything else rejects.
- OBX-8 test-data / demo-data (IEEE 11073 MeasurementStatus as IHE PCD gateways send it):
  the OBX is skipped, not stored as patient data.
- OBX-2 must be NM and OBX-5 one number; an empty OBX-5 or one of the "no value" codes of
  monitors (NO_VALUE) is skipped as absent rather than rejected, so an unplugged probe does
  not lose the other vitals of the bed.
- OBX-6: an MDC unit or a UCUM unit that fits the vital; degF is converted to C.
- the time: OBX-14, else OBR-7 of the OBX's OBR, else MSH-7. A time without a zone takes
  the zone of MSH-7 (HL7 v2: the sender's zone), else the site's zone (`local_tz`, config
  ingest.local_timezone), else it is rejected with a reason naming that setting.
A skipped OBX that carried a value is named in `notes` (published beside the stored
message, never silent). OBX of one time merge into one Observation; two different values
of one vital at one time reject the message.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import NamedTuple

from monitor.clinical.codes import (
    HL7_NOT_PATIENT_FLAGS,
    HL7_NOT_PATIENT_PROCESSING,
    LOINC_VITALS,
    MDC_BY_CODE,
    MDC_BY_NAME,
    MDC_UNIT_BY_CODE,
    MDC_UNIT_BY_NAME,
)
from monitor.ingest.messages import Observation, Rejected
from monitor.ingest.validate import (
    LOCAL_TZ_HINT,
    ObservationSet,
    check_time,
    convert_unit,
    local_time,
    normalise_unit,
    payload_bytes,
)

LOINC_SYSTEM_NAMES = ("LN", "LOINC", "HTTP://LOINC.ORG")
USED_STATUS = ("F", "C", "R", "P", "S", "U")
SKIPPED_STATUS = {
    "X": "results cannot be obtained",
    "D": "deleted",
    "W": "wrong (withdrawn)",
    "I": "in process, no result yet",
    "N": "not asked",
    "O": "order detail only",
}
# Values monitors send for "no value": IEEE 11073-20601 FLOAT NaN, NRes, +INF, -INF, and
# the -999 of several vendors.
NO_VALUE = frozenset({8388607.0, -8388608.0, 8388606.0, -8388606.0, -999.0})

HL7_TIME = re.compile(
    r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?([+-]\d{4})?", re.ASCII
)
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)", re.ASCII)


class Separators(NamedTuple):
    field: str
    component: str
    repetition: str


class Reading(NamedTuple):
    ts: float
    vital: str
    rank: int
    value: float
    where: str


def decode_hl7(
    payload: bytes,
    now: float,
    max_future_s: float = 300.0,
    max_past_s: float = 14 * 86400.0,
    local_tz: tzinfo | None = None,
    notes: list[str] | None = None,
) -> list[Observation]:
    """An ORU^R01 message -> Observations, oldest first. `local_tz`: the site's zone for
    times without one (when MSH-7 has none either); `notes` receives what was skipped."""
    segments = _segments(payload)
    seps = _separators(segments[0])
    msh = [""] + segments[0].split(seps.field)  # msh[n] is MSH-n, n >= 2
    _check_type(_get(msh, 9), seps)
    _check_processing(_get(msh, 11), seps)
    msh7 = _get(msh, 7).split(seps.component)[0].strip()
    zone = _msh_zone(msh7, local_tz)
    times = {"OBR-7": "", "MSH-7": msh7}  # fallbacks for an OBX without OBX-14
    readings: list[Reading] = []
    unused: Counter[str] = Counter()
    obx_count = 0
    for segment in segments[1:]:
        fields = segment.split(seps.field)
        if fields[0] == "MSH":
            raise Rejected("more than one MSH segment: send one message per publish")
        if fields[0] == "OBR":
            times["OBR-7"] = _get(fields, 7)
        elif fields[0] == "OBX":
            obx_count += 1
            reading = _read_obx(fields, f"OBX #{obx_count}", seps, times, unused, zone, notes)
            if reading is not None:
                ts, vital, rank, value, where = reading
                ts = check_time(ts, now, max_future_s, max_past_s, f"{where}: time")
                readings.append(Reading(ts, vital, rank, value, where))
    if not obx_count:
        raise Rejected("no OBX segments in message")
    merged = _merge(readings)
    if not len(merged):
        summary = ", ".join(f"{n} {why}" for why, n in unused.items())
        raise Rejected(f"no usable vital signs in message ({summary})")
    return merged.observations()


def _segments(payload: bytes) -> list[str]:
    data = payload_bytes(payload)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # HL7 v2 senders often use 8859-1
    text = text.replace("\x0b", "").replace("\x1c", "")
    segments = [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]
    if not segments or not segments[0].startswith("MSH"):
        raise Rejected("not an HL7 v2 message: the first segment is not MSH")
    return segments


def _separators(msh: str) -> Separators:
    if len(msh) < 8:
        raise Rejected("MSH: too short to hold the separators (MSH-1, MSH-2)")
    field = msh[3]
    encoding = msh[4:].split(field, 1)[0]
    chars = field + encoding
    if (
        len(encoding) not in (4, 5)
        or len(set(chars)) != len(chars)
        or any(c.isalnum() or c.isspace() for c in chars)
    ):
        raise Rejected("MSH-1/MSH-2: separators must be distinct, not letters, digits or spaces")
    return Separators(field, encoding[0], encoding[1])


def _check_type(raw: str, seps: Separators) -> None:
    parts = [p.strip().upper() for p in raw.split(seps.component)]
    if parts[:2] != ["ORU", "R01"] or (len(parts) > 2 and parts[2] not in ("", "ORU_R01")):
        raise Rejected(f"MSH-9: message type {raw[:20]!r} is not ORU^R01")


def _check_processing(raw: str, seps: Separators) -> None:
    """MSH-11 processing ID D (debugging) or T (training): not patient data."""
    pid = raw.split(seps.component)[0].strip().upper()
    if pid in HL7_NOT_PATIENT_PROCESSING:
        raise Rejected(
            f"MSH-11 processing ID {pid} ({HL7_NOT_PATIENT_PROCESSING[pid]}): not patient "
            "data, not stored; send production messages (P)"
        )


def _msh_zone(msh7: str, local_tz: tzinfo | None) -> tzinfo | None:
    """The zone of a time sent without one: MSH-7's (the sender's), else the site's. An
    impossible zone in MSH-7 gives none (a time that needs it is rejected, not guessed)."""
    match = HL7_TIME.fullmatch(msh7)
    if match and match.group(8):
        offset = _offset(match.group(8))
        return timezone(offset) if offset is not None else None
    return local_tz


def _read_obx(
    fields: list[str],
    where: str,
    seps: Separators,
    times: dict[str, str],
    unused: Counter[str],
    zone: tzinfo | None,
    notes: list[str] | None,
) -> Reading | None:
    """One OBX -> a Reading (ts not yet checked against the clock), or None if skipped."""
    known = _identify(_get(fields, 3).split(seps.repetition)[0], seps, where)
    if known is None:
        unused["OBX with codes CRSWatch does not read"] += 1
        return None
    vital, rank = known
    raw = _get(fields, 5).strip()
    status = _get(fields, 11).strip().upper()
    if status in SKIPPED_STATUS:
        unused["OBX with status X, D, W, I, N or O"] += 1
        if raw and notes is not None:
            notes.append(f"{where}: {vital} skipped: OBX-11 {status} ({SKIPPED_STATUS[status]})")
        return None
    if status not in USED_STATUS:
        shown = repr(status[:5]) if status else "missing"
        raise Rejected(
            f"{where}: OBX-11 result status {shown} is not one of {', '.join(USED_STATUS)}"
            f" (results) or {', '.join(SKIPPED_STATUS)} (no result)"
        )
    flag = _not_patient_flag(_get(fields, 8), seps)
    if flag:
        unused["OBX flagged as test or demo data"] += 1
        if raw and notes is not None:
            notes.append(f"{where}: {vital} skipped: OBX-8 {flag} (not patient data)")
        return None
    if not raw:
        unused["OBX without a value"] += 1
        return None
    kind = _get(fields, 2).strip().upper()
    if kind != "NM":
        raise Rejected(f"{where}: OBX-2 value type {kind[:5]!r} is not NM (needed for {vital})")
    if seps.repetition in raw or not NUMBER.fullmatch(raw):
        raise Rejected(f"{where}: OBX-5 is not one number")
    value = float(raw)
    if value in NO_VALUE:
        unused["OBX without a value"] += 1
        return None
    unit = _unit(_get(fields, 6).split(seps.repetition)[0], seps, where)
    value = convert_unit(vital, value, unit, f"{where}: OBX-6")
    for name, time_raw in (("OBX-14", _get(fields, 14)), *times.items()):
        time_raw = time_raw.split(seps.component)[0].strip()
        if time_raw:
            return Reading(_hl7_time(time_raw, name, where, zone), vital, rank, value, where)
    raise Rejected(f"{where}: no time (OBX-14, OBR-7 and MSH-7 are empty)")


def _not_patient_flag(raw: str, seps: Separators) -> str:
    """The OBX-8 flag that marks test or demo data, or ''."""
    for repetition in raw.split(seps.repetition):
        for part in repetition.split(seps.component):
            if part.strip().upper() in HL7_NOT_PATIENT_FLAGS:
                return part.strip()[:20]
    return ""


def _identify(raw: str, seps: Separators, where: str) -> tuple[str, int] | None:
    """OBX-3 -> (vital, rank) for a code we read, else None."""
    parts = raw.split(seps.component) + [""] * 6
    for code, name, system in ((parts[0], parts[1], parts[2]), (parts[3], parts[4], parts[5])):
        code, name, system = code.strip(), name.strip(), system.strip().upper()
        if system == "MDC":
            by_code, by_name = MDC_BY_CODE.get(code), MDC_BY_NAME.get(name)
            if by_code and by_name and by_code[0] != by_name[0]:
                raise Rejected(f"{where}: OBX-3 code {code[:10]} and name {name[:40]} disagree")
            if by_code or by_name:
                return by_code or by_name
        elif system in LOINC_SYSTEM_NAMES and code in LOINC_VITALS:
            return LOINC_VITALS[code], 0
    return None


def _unit(raw: str, seps: Separators, where: str) -> str | None:
    """OBX-6 -> a unit string that convert_unit understands (UCUM), or what was sent."""
    parts = raw.split(seps.component) + [""] * 6
    sent = None
    for code, name, system in ((parts[0], parts[1], parts[2]), (parts[3], parts[4], parts[5])):
        code, name, system = code.strip(), name.strip(), system.strip().upper()
        if system == "MDC" or name.startswith("MDC_DIM"):
            by_code, by_name = MDC_UNIT_BY_CODE.get(code), MDC_UNIT_BY_NAME.get(name)
            if by_code and by_name and by_code != by_name:
                raise Rejected(f"{where}: OBX-6 unit code {code[:10]} and name {name[:30]} differ")
            if by_code or by_name:
                return by_code or by_name
        for candidate in (code, name):
            if candidate and normalise_unit(candidate):
                return candidate
        sent = sent or code or name or None
    return sent


@lru_cache(maxsize=256)  # a sender uses one or two zones; asked for every time it sends
def _offset(zone: str) -> timedelta | None:
    """+HHMM / -HHMM -> its offset, None if impossible."""
    hours, minutes = int(zone[1:3]), int(zone[3:5])
    offset = timedelta(hours=hours, minutes=minutes)
    if minutes >= 60 or offset > timedelta(hours=14):
        return None
    return -offset if zone[0] == "-" else offset


def _hl7_time(raw: str, name: str, where: str, default_zone: tzinfo | None = None) -> float:
    """HL7 TS YYYYMMDDHHMM[SS[.S[S[S[S]]]]][+/-ZZZZ] -> epoch seconds. Without a zone,
    `default_zone` applies (MSH-7's, else the site's)."""
    match = HL7_TIME.fullmatch(raw)
    if not match:
        raise Rejected(f"{where}: {name} is not an HL7 time with minutes (YYYYMMDDHHMM[SS]+ZZZZ)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        offset = _offset(zone) if zone is not None else None
        if zone is not None and offset is None:
            raise ValueError
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
        if offset is not None:
            return moment.replace(tzinfo=timezone(offset)).timestamp()
    except (ValueError, OverflowError):
        raise Rejected(f"{where}: {name} is not a valid date, time or zone") from None
    if default_zone is None:
        fields = name if name == "MSH-7" else f"{name} nor in MSH-7"
        raise Rejected(f"{where}: no time zone in {fields}; {LOCAL_TZ_HINT}")
    try:
        return local_time(moment, default_zone, f"{where}: {name}")
    except (ValueError, OverflowError):
        raise Rejected(f"{where}: {name} is not a representable time") from None


def _merge(readings: list[Reading]) -> ObservationSet:
    """Apply the source preferences (see MDC_OBSERVATIONS), then merge by time."""
    if any(r.vital == "hr" and r.rank == 0 for r in readings):
        readings = [r for r in readings if not (r.vital == "hr" and r.rank > 0)]
    best: dict[tuple[float, str], int] = {}
    for r in readings:
        key = (r.ts, r.vital)
        best[key] = min(best.get(key, r.rank), r.rank)
    merged = ObservationSet()
    for r in readings:
        if r.rank == best[(r.ts, r.vital)]:
            merged.add(r.ts, r.vital, r.value, r.where)
    return merged


def _get(fields: list[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""
