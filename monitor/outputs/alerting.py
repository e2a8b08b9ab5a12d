"""The daemon's side of alerting: feeds bed states to the pure engine (alerts/), stores
every alert, event and audit record through the one writer, and delivers notifications on
their channels: the dashboard (live hub), MQTT `{p}/{ward}/alerts`, webhooks.

Synchronous apart from user actions (which await their commit before answering), so the
same code runs in the daemon, in `replay` and in tests with an injected clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import orjson

from alerts.alert import Decision
from alerts.audit import GENESIS, AuditEvent, canonical, chain
from alerts.config import AlertSettings
from alerts.engine import AlertEngine
from alerts.routing import deliveries
from alerts.view import BedView
from monitor.outputs.webhooks import Target
from monitor.store.reads import active_alert_records, audit_count, audit_head

MQTT_EVENTS = ("raised", "escalated", "acknowledged", "resolved")  # SPEC.md's alert events


class Alerting:
    def __init__(
        self,
        *,
        settings: AlertSettings,
        pipeline,
        clock,
        prefix: str,
        outbox=None,
        hub=None,
        metrics=None,
        webhooks=None,
        public_url: str = "",
        audit_key: bytes | None = None,
    ):
        self.settings, self.pipeline, self.clock, self.prefix = (settings, pipeline, clock, prefix)
        self.outbox, self.hub, self.metrics, self.webhooks = outbox, hub, metrics, webhooks
        self.public_url = public_url.rstrip("/")
        # the chain's HMAC key (a throw-away one for replay and tests: nothing to verify)
        self.audit_key = audit_key if audit_key is not None else secrets.token_bytes(32)
        conn = pipeline.store.reader()
        try:
            self.engine = AlertEngine.restore(settings, active_alert_records(conn))
            head, self.count = audit_head(conn), audit_count(conn)
        finally:
            conn.close()
        self.head = head or GENESIS
        self.decisions: list[Decision] = []  # every decision since start (replay reads it)
        self.keys: dict[tuple[str, str], tuple] = {}  # (ward, bed) -> last evaluated alert_key
        self.keep_decisions = False

    # -- evaluation ------------------------------------------------------------------------
    def on_state(self, view: BedView) -> None:
        """A bed's new state (an empty bed once its patient left). A view whose
        `alert_key()` (everything the rules read) is the bed's last one is not evaluated
        again: what time alone changes is `tick()`'s."""
        key = view.alert_key()
        if self.keys.get((view.ward, view.bed)) == key:
            return
        self.keys[(view.ward, view.bed)] = key
        now = self.clock()
        if view.patient_id is None:
            self.handle(self.engine.discharge(view.ward, view.bed, now))
        else:
            self.handle(self.engine.evaluate(view, now))

    def tick(
        self,
        broker_connected: bool = True,
        store_ok: bool = True,
        store_error: str = "",
        faults: Sequence[tuple[str, str]] = (),
        behind_s: float = 0.0,
        behind_limit_s: float = 300.0,
    ) -> None:
        now = self.clock()
        self.handle(self.engine.tick(now))
        self.system(broker_connected, store_ok, store_error, faults, behind_s, behind_limit_s)

    def next_due(self) -> float:
        """When the next hold ends or snooze expires (AlertEngine.next_due)."""
        return self.engine.next_due()

    def system(
        self,
        broker_connected: bool = True,
        store_ok: bool = True,
        store_error: str = "",
        faults: Sequence[tuple[str, str]] = (),
        behind_s: float = 0.0,
        behind_limit_s: float = 300.0,
    ) -> None:
        """The daemon's own health now (also called at once when one of its tasks fails,
        not only from the tick: the failed task may be the tick). `behind_s`: how far the
        daemon lags its input (its own "lag" alert beyond `behind_limit_s`)."""
        now = self.clock()
        self.handle(
            self.engine.evaluate_system(
                broker_connected,
                store_ok,
                store_error,
                now,
                faults,
                behind_s=behind_s,
                behind_limit_s=behind_limit_s,
            )
        )

    # -- user actions (answered once committed) -------------------------------------------
    def active(self, ward: str | None = None, receiver: str | None = None) -> list[dict]:
        """The active alerts (of a ward); for a receiver, those it must act on: told, and
        tier 2 or more (a tier-1 advisory is a note on the tile, in nobody's list, even
        when it is an alert downgraded after someone was told)."""
        return [
            a
            for a in self.engine.active()
            if (ward is None or a["ward"] == ward)
            and (receiver is None or (receiver in a["told"] and a["tier"] >= 2))
        ]

    def get(self, alert_id: str) -> dict | None:
        return next((a for a in self.engine.active() if a["id"] == alert_id), None)

    async def ack(self, alert_id: str, user: str) -> dict:
        return await self._act(self.engine.ack(alert_id, user, self.clock()), alert_id)

    async def snooze(self, alert_id: str, user: str, seconds: float) -> dict:
        return await self._act(self.engine.snooze(alert_id, user, self.clock(), seconds), alert_id)

    async def resolve(
        self, alert_id: str, user: str, note: str = "", role: str | None = None
    ) -> dict:
        decisions = self.engine.resolve(alert_id, user, self.clock(), note, role)
        return await self._act(decisions, alert_id)

    async def _act(self, decisions: list[Decision], alert_id: str) -> dict:
        self.handle(decisions)
        await self.pipeline.commit_now()
        mine = [d for d in decisions if d.alert.get("id") == alert_id]
        last = mine[-1] if mine else decisions[-1]
        return {**last.alert, "event": last.event, "reason": last.reason}

    async def audit(
        self, name: str, actor: str, detail: dict | None = None, alert_id: str | None = None
    ) -> None:
        """Append a user action (login, care entry, override...) to the audit chain."""
        self._chain(AuditEvent.at(name, self.clock(), actor, alert_id, detail))
        await self.pipeline.commit_now()

    def audit_later(
        self, name: str, actor: str, detail: dict | None = None, alert_id: str | None = None
    ) -> None:
        """Append to the chain with the next commit (no waiting: the daemon's own loops)."""
        self._chain(AuditEvent.at(name, self.clock(), actor, alert_id, detail))

    # -- decisions -> storage and channels -------------------------------------------------
    def handle(self, decisions: list[Decision]) -> None:
        for d in decisions:
            self._store(d)
            self._chain(AuditEvent.of_decision(d))
            self._deliver(d)
            if self.keep_decisions:
                self.decisions.append(d)

    def _store(self, d: Decision) -> None:
        a = d.alert
        rows = self.pipeline.extra
        if a.get("id"):
            engine = self.engine.record_of(a)
            rows.append(
                (
                    "alerts",
                    {
                        "id": a["id"],
                        "ward": a["ward"],
                        "bed": a["bed"],
                        "patient_id": a["patient_id"],
                        "kind": a["kind"],
                        "tier": a["tier"],
                        "state": a["state"],
                        "raised_ts": a["raised_ts"],
                        "updated_ts": a["ts"],
                        "record": orjson.dumps(a).decode(),
                        "engine": orjson.dumps(engine).decode() if engine else None,
                    },
                )
            )
            if self.metrics is not None:
                self.metrics.alerts.labels(str(a["tier"]), d.event).inc()
        rows.append(
            (
                "alert_events",
                {
                    "alert_id": a.get("id"),
                    "ts": a["ts"],
                    "event": d.event,
                    "tier": a["tier"],
                    "notify": int(d.notify),
                    "receivers": orjson.dumps(list(d.receivers)).decode(),
                    "reason": d.reason,
                    "message": a["message"],
                },
            )
        )
        self.pipeline.wakeup.set()

    def _chain(self, event: AuditEvent) -> None:
        rec = chain(self.head, event, self.audit_key)
        self.head = rec["hash"]
        self.count += 1
        self.pipeline.extra.append(
            (
                "audit",
                {
                    "ts": rec["ts"],
                    "name": rec["name"],
                    "actor": rec["actor"],
                    "alert_id": rec["alert_id"],
                    "detail": canonical(rec["detail"]),
                    "prev": rec["prev"],
                    "hash": rec["hash"],
                },
            )
        )
        self.pipeline.wakeup.set()

    def _deliver(self, d: Decision) -> None:
        a = d.alert
        if self.hub is not None:
            self.hub.publish(
                {
                    "type": "alert",
                    "event": d.event,
                    "alert": a,
                    "reason": d.reason,
                    "notify": d.notify,
                    "receivers": list(d.receivers),
                }
            )
        if not d.notify or not a.get("id"):
            return
        payload = {**d.payload(), "link": f"{self.public_url}/alerts/{a['id']}"}
        if self.outbox is not None and "mqtt" in d.channels and d.event in MQTT_EVENTS:
            self.outbox.put(f"{self.prefix}/{a['ward']}/alerts", orjson.dumps(payload))
        if self.webhooks is None:
            return
        for receiver, channel, hook in deliveries(self.settings, d.receivers):
            if channel == "webhook" and hook is not None:
                self.webhooks.send(
                    Target(receiver, hook.url, hook.secret), {**payload, "receiver": receiver}
                )
