"""An inbound message on its way through the daemon: routed, then written, then applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.ingest.messages import Admission

# A valid topic is at most 32 + 32 + 32 + 9 characters and 3 slashes: what is kept of a
# rejected message's topic (stored, published) loses nothing of a valid one.
TOPIC_KEPT = 160


def kept_topic(topic: str) -> str:
    """A rejected message's topic as stored and published: an invented topic of 60 KB
    must not cost 60 KB per rejection."""
    if len(topic) <= TOPIC_KEPT:
        return topic
    return f"{topic[: TOPIC_KEPT - 30]}...({len(topic)} characters)"


@dataclass(slots=True)
class AdmissionRecord:
    """An admission as the daemon holds it: the bed it occupies and its stable id."""

    id: str
    ward: str
    bed: str
    admission: Admission
    discharged_ts: float | None = None

    @property
    def patient_id(self) -> str:
        return self.admission.patient_id


@dataclass(slots=True)
class Item:
    topic: str
    received_ts: float
    # vitals | care | admit | discharge | device | reject | duplicate
    kind: str
    ward: str = ""
    bed: str = ""
    record: AdmissionRecord | None = None
    body: Any = None  # list[Observation] | CareEvent | Admission | Discharge | DeviceStatus
    source: str = ""  # json | fhir | hl7, for vitals
    reason: str = ""  # why it was rejected or counted as a duplicate
    payload: bytes = b""  # kept only for rejections (stored, never published)
    # Set by the MQTT edge: what to acknowledge once the write is committed.
    mid: int = 0
    qos: int = 0
    conn: Any = None
    # Set by the writer: the observations (or parts of them) that were new.
    new: list = field(default_factory=list)
    points: int = 0  # how many of `new` were new time points (not merged into one)
    done: Any = None  # an asyncio.Future when someone awaits the commit (dashboard entry)
    flood: bool = False  # rejected by the per-bed rate limit (published coalesced)
    bucket: str = ""  # the rate limit's bucket of a flood rejection (a bed, or UNSERVED)
    merge_into: int = 0  # a flood rejection added to this stored row (its id), not a new one
    row_id: int = 0  # set by the writer: the id of the rejection row it stored or updated
    # A flood rejection stands for `count` messages of one bed, received until last_ts;
    # `acks` holds (seq, conn, mid, qos) of all but the first (whose are the fields above).
    count: int = 1
    last_ts: float = 0.0
    acks: list | None = None
    seq: int = 0  # order of receipt: acknowledgements go out in this order
    extra: dict = field(default_factory=dict)  # added to the published rejection

    def reject(self, reason: str) -> None:
        self.kind, self.reason, self.new = "reject", reason, []
