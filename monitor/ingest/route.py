"""From (topic, payload) to an Item: parse the topic, decode the payload, check the bed.

Pure apart from the admissions registry it consults and updates (admit and discharge take
effect at once, so later messages of the same batch see them). Never raises: whatever is
wrong becomes a rejection with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo

from monitor.clinical.thresholds import NAME
from monitor.ingest import decode_fhir, decode_hl7, decode_json
from monitor.ingest.admissions import Admissions, admission_id
from monitor.ingest.items import AdmissionRecord, Item
from monitor.ingest.messages import Rejected

log = logging.getLogger("crswatch.route")

INBOUND = ("admit", "discharge", "vitals", "fhir", "hl7", "care", "device")
DEVICE_DECODERS = {
    "fhir": ("fhir", decode_fhir.decode_fhir),
    "hl7": ("hl7", decode_hl7.decode_hl7),
}


class Router:
    def __init__(
        self,
        prefix: str,
        admissions: Admissions,
        *,
        max_bytes: int,
        max_future_s: float,
        max_past_s: float,
        local_tz: tzinfo | None = None,
        ward_tz: dict[str, tzinfo] | None = None,
        on_internal_error: Callable[[str, str], None] = lambda decoder, exc: None,
    ):
        """`on_internal_error(decoder, exception name)` counts a decoder's bug."""
        self.prefix = prefix
        self.on_internal_error = on_internal_error
        self.reported: set[tuple[str, str]] = set()  # (exception type, decoder) logged
        self.admissions = admissions
        self.max_bytes = max_bytes
        self.limits = {"max_future_s": max_future_s, "max_past_s": max_past_s}
        # The zone of device times sent without one (HL7 v2, FHIR): the ward's, else the site's.
        self.local_tz = local_tz
        self.ward_tz = ward_tz or {}

    def route(self, topic: str, payload: bytes, now: float) -> Item:
        item = Item(topic=topic, received_ts=now, kind="reject", payload=payload)
        try:
            self._route(item, payload, now)
        except Rejected as e:
            item.reject(e.reason)
        except Exception as e:  # a decoder bug must not stop the ward: reject, say why
            item.reject(f"internal error while decoding ({type(e).__name__}); reported")
            self._report(topic, e)
        return item

    def _report(self, topic: str, e: Exception) -> None:
        """Log a decoder's bug with its traceback once per (exception type, decoder) (a
        flood of one bad message must not flood the log) and count every occurrence."""
        decoder = topic.rsplit("/", 1)[-1][:32]
        decoder = decoder if decoder in INBOUND else "router"
        key = (type(e).__name__, decoder)
        if key not in self.reported:
            self.reported.add(key)
            log.error(
                "internal error in the %s decoder (%s); the message is rejected; later "
                "ones of this kind are counted in crswatch_internal_errors_total",
                decoder,
                key[0],
                exc_info=e,
            )
        self.on_internal_error(decoder, key[0])

    def _route(self, item: Item, payload: bytes, now: float) -> None:
        parts = item.topic.split("/")
        if len(parts) != 4 or parts[0] != self.prefix or parts[3] not in INBOUND:
            raise Rejected(
                f"unknown topic (expected {self.prefix}/WARD/BED/{{{'|'.join(INBOUND)}}})"
            )
        _, ward, bed, kind = parts
        if not (NAME.match(ward) and NAME.match(bed)):
            raise Rejected("ward and bed must be 1-32 of A-Z a-z 0-9 _ -")
        item.ward, item.bed = ward, bed
        if len(payload) > self.max_bytes:
            raise Rejected(f"message of {len(payload)} bytes is over the limit of {self.max_bytes}")
        if kind == "device":
            item.kind, item.body = "device", decode_json.decode_device(payload)
        elif kind == "admit":
            self._admit(item, payload, now)
        elif kind == "discharge":
            self._discharge(item, payload, now)
        else:
            record = self.admissions.get(ward, bed)
            notes: list[str] = []
            if kind == "care":
                body = decode_json.decode_care(payload, now, **self.limits)
                item.source = "care"
            elif kind == "vitals":
                item.source = "json"
                body = decode_json.decode_vitals(payload, now, **self.limits)
            else:
                item.source, decode = DEVICE_DECODERS[kind]
                zone = self.ward_tz.get(ward, self.local_tz)
                body = decode(payload, now, **self.limits, local_tz=zone, notes=notes)
            if record is None:
                raise Rejected("no patient is admitted to this bed")
            first = min(o.ts for o in body) if kind != "care" else body.ts
            if first < record.admission.ts:
                raise Rejected("timestamped before the admission of the patient in this bed")
            item.kind = "care" if kind == "care" else "vitals"
            item.record, item.body = record, body
            if kind in DEVICE_DECODERS and notes:
                item.extra = {"skipped": notes}  # stored without these: said beside it
        if item.kind != "reject":
            item.payload = b""

    def _admit(self, item: Item, payload: bytes, now: float) -> None:
        a = decode_json.decode_admit(payload, now, **self.limits)
        current = self.admissions.get(item.ward, item.bed)
        new_id = admission_id(item.ward, item.bed, a)
        if current is not None:
            if current.id == new_id:
                item.kind, item.reason, item.record = "duplicate", "already admitted", current
                return
            raise Rejected("bed is occupied by another admission; discharge it first")
        last = self.admissions.last_discharged.get((item.ward, item.bed))
        if last is not None and last.id == new_id:
            raise Rejected("this admission was already discharged; admit with a new ts")
        record = AdmissionRecord(new_id, item.ward, item.bed, a)
        self.admissions.admit(record)
        item.kind, item.record, item.body = "admit", record, a

    def _discharge(self, item: Item, payload: bytes, now: float) -> None:
        d = decode_json.decode_discharge(payload, now, **self.limits)
        current = self.admissions.get(item.ward, item.bed)
        if current is None:
            last = self.admissions.last_discharged.get((item.ward, item.bed))
            if (
                last is not None
                and d.patient_id in (None, last.patient_id)
                and d.ts == last.discharged_ts
            ):
                item.kind, item.reason, item.record = "duplicate", "already discharged", last
                return
            raise Rejected("no patient is admitted to this bed")
        if d.patient_id is not None and d.patient_id != current.patient_id:
            raise Rejected("patient_id does not match the admission at this bed")
        if d.ts < current.admission.ts:
            raise Rejected("discharge time is before the admission time")
        item.kind, item.body = "discharge", d
        item.record = self.admissions.discharge(item.ward, item.bed, d.ts)
