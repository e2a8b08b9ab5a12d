"""What the dashboard may ask of the daemon: `DashboardPort` (REVIEW-architecture P8).

The dashboard registers its routes against this port, never against the daemon's
attributes: the daemon may reshape its ward, pipeline, store and alerting without the
pages noticing. `DaemonPort` implements it over a running Daemon (the daemon hands it to
the `routes` hook). Every SQL statement the dashboard needs is in monitor/store/reads.py
(over `open_reader`) or monitor/store/writes.py and accounts.py (run by `write`, in the
one writer's transaction).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Protocol

from monitor.config import Config
from monitor.ingest.items import AdmissionRecord, Item
from monitor.outputs.hub import Listener
from monitor.store.reads import latest_admission, open_reader, patient_history


class DashboardPort(Protocol):
    cfg: Config

    def now(self) -> float: ...
    def clock_rate(self) -> float: ...
    def wall_now(self) -> float: ...
    def pacing(self) -> Any: ...
    def beds(self, ward: str | None = None) -> list[dict]: ...
    def state_of(self, patient_id: str) -> dict | None: ...
    def admission_in(self, ward: str, bed: str) -> AdmissionRecord | None: ...
    def admission_of(self, patient_id: str) -> tuple[str, str, str] | None: ...
    async def submit_care(self, ward: str, bed: str, payload: bytes) -> Item: ...
    def active_alerts(self, ward: str | None = None, receiver: str | None = None) -> list: ...
    def alert(self, alert_id: str) -> dict | None: ...
    def alert_settings(self) -> Any: ...
    async def ack(self, alert_id: str, user: str) -> dict: ...
    async def snooze(self, alert_id: str, user: str, seconds: float) -> dict: ...
    async def resolve(self, alert_id: str, user: str, note: str, role: str) -> dict: ...
    async def audit(
        self, name: str, actor: str, detail: dict, alert_id: str | None = None
    ) -> None: ...
    def subscribe(self) -> Listener: ...
    def unsubscribe(self, listener: Listener) -> None: ...
    def publish(self, event: dict[str, Any]) -> None: ...
    def forecast_summary(self) -> dict: ...
    async def write(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def open_reader(self) -> sqlite3.Connection: ...
    def patient_history(self, patient_id: str) -> dict | None: ...


class DaemonPort:
    """DashboardPort over a started Daemon."""

    def __init__(self, daemon: Any):
        self._d = daemon
        self.cfg: Config = daemon.cfg

    def now(self) -> float:
        return self._d.clock()

    def clock_rate(self) -> float:
        """How fast the daemon's clock runs (a demo or replay runs faster)."""
        return getattr(self._d.clock, "speed", 1.0)

    def wall_now(self) -> float:
        """The wall clock under the daemon's (the demo's SimClock keeps it as `.wall`)."""
        wall = getattr(self._d.clock, "wall", None)
        return wall() if callable(wall) else self._d.clock()

    def pacing(self) -> Any:
        """The demo's pacing (asked speed, how far behind), or None on a ward."""
        return getattr(self._d, "pacing", None)

    # -- the ward -------------------------------------------------------------------------
    def beds(self, ward: str | None = None) -> list[dict]:
        return self._d.ward.states(ward)

    def state_of(self, patient_id: str) -> dict | None:
        return next((s for s in self._d.ward.states() if s.get("patient_id") == patient_id), None)

    def admission_in(self, ward: str, bed: str) -> AdmissionRecord | None:
        return self._d.ward.admissions_at(ward, bed)

    def admission_of(self, patient_id: str) -> tuple[str, str, str] | None:
        """(admission id, ward, bed): the current admission, else the latest stored."""
        rec = next((r for r in self._d.ward.records.values() if r.patient_id == patient_id), None)
        if rec is not None:
            return rec.id, rec.ward, rec.bed
        conn = self.open_reader()
        try:
            return latest_admission(conn, patient_id)
        finally:
            conn.close()

    async def submit_care(self, ward: str, bed: str, payload: bytes) -> Item:
        """A care event through the daemon's own path (validated, stored, graded)."""
        return await self._d.pipeline.submit(f"{self.cfg.prefix}/{ward}/{bed}/care", payload)

    def forecast_summary(self) -> dict:
        f = self._d.ward.forecaster
        if f is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "model": f.model.version,
            "learned": f.model.n_learned,
            "quality": f.quality(),
            "validated": False,
        }

    # -- alerts and the audit chain ---------------------------------------------------------
    def active_alerts(self, ward: str | None = None, receiver: str | None = None) -> list:
        return list(self._d.alerts.active(ward=ward, receiver=receiver))

    def alert(self, alert_id: str) -> dict | None:
        return self._d.alerts.get(alert_id)

    def alert_settings(self) -> Any:
        """The [alerts] settings in force (a reload replaces them)."""
        return self._d.alerts.settings

    async def ack(self, alert_id: str, user: str) -> dict:
        return await self._d.alerts.ack(alert_id, user)

    async def snooze(self, alert_id: str, user: str, seconds: float) -> dict:
        return await self._d.alerts.snooze(alert_id, user, seconds)

    async def resolve(self, alert_id: str, user: str, note: str, role: str) -> dict:
        return await self._d.alerts.resolve(alert_id, user, note, role=role)

    async def audit(self, name: str, actor: str, detail: dict, alert_id: str | None = None) -> None:
        await self._d.audit(name, actor, detail, alert_id)

    # -- live changes -----------------------------------------------------------------------
    def subscribe(self) -> Listener:
        return self._d.hub.subscribe()

    def unsubscribe(self, listener: Listener) -> None:
        self._d.hub.unsubscribe(listener)

    def publish(self, event: dict[str, Any]) -> None:
        self._d.hub.publish(event)

    # -- the store --------------------------------------------------------------------------
    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(conn, *args) in the one writer's transaction."""
        return await self._d.store.transact(fn, *args)

    def open_reader(self) -> sqlite3.Connection:
        return open_reader(self._d.store.path, self.cfg["storage.busy_timeout_s"])

    def patient_history(self, patient_id: str) -> dict | None:
        """Blocking (call it in a thread): everything stored about one patient."""
        conn = self.open_reader()
        try:
            return patient_history(conn, patient_id)
        finally:
            conn.close()
