"""The daemon: wires config, store, clinical state, MQTT edge and HTTP together.

Async lives here and at the edges (mqtt.py, http.py); everything it calls is plain code.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from alerts.audit import Anchor, utc
from monitor import config
from monitor.clock import Clock, iso, wall_clock
from monitor.config import Config
from monitor.ingest.mllp import MllpServer
from monitor.ingest.mqtt import MqttEdge
from monitor.ops.broker import start_broker
from monitor.ops.http import make_app
from monitor.ops.metrics import Metrics
from monitor.ops.sdnotify import Notifier
from monitor.ops.supervisor import Supervisor, TaskFactory
from monitor.outputs.alerting import Alerting
from monitor.outputs.audit_trail import append_anchor, load_key, read_anchors
from monitor.outputs.hub import Hub
from monitor.outputs.webhooks import Webhooks
from monitor.pipeline import Outbox, Pipeline
from monitor.port import DaemonPort
from monitor.state.view import to_wire
from monitor.store.reads import audit_inbox
from monitor.store.retention import PRUNE_BATCH, prune_rejections
from monitor.store.writes import delete_audit_inbox, replace_forecast_state

log = logging.getLogger("crswatch")
# How long /healthz reports that publications were dropped from a full outbox.
DROPPED_SHOWN_S = 600.0
# Bytes waiting in paho for the socket beyond which each bed's latest state waits (the
# states of a pass go out as one write, so packets no longer count them: 8 MB is some
# 6,000 states, or a flood's acknowledgements queued ahead).
STATE_BACKLOG_MAX = 8_000_000
# The share of the event loop's time the state passes may take, and the beds a pass
# grades however slow the last ones were.
TICK_MIN_S = 0.01  # the clock's pass comes at most this often (a hold ending sooner)
STATE_SHARE = 0.35
MIN_BEDS_PER_PASS = 20
# What stops while each supervised task is down (the reason of its tier-3 alert).
TASK_ROLES = {
    "pipeline": "readings are not stored, acknowledged or graded",
    "mqtt": "no reading is received from any bed",
    "publisher": "alerts, rejections and the daemon's status are not published on MQTT",
    "state": "beds are not graded and their alerts are not raised",
    "tick": "escalations, repeats and the stale/lost checks of vitals have stopped",
    "heartbeat": "the store is not checked while no reading arrives",
    "retention": "old rejections are not deleted (storage.rejections_keep_days)",
    "gc": "garbage collection runs with Python's defaults (longer pauses)",
    "mllp": "HL7 from central stations over MLLP is not received",
}
RETENTION_EVERY_S = 3600.0
WATCHDOG_EVERY_S = 1.0  # the state loop tells systemd it is alive at most this often


class Daemon:
    heartbeat_s = 10.0  # the store is proved writable this often when nothing arrives

    def __init__(
        self,
        cfg: Config,
        clock: Clock = wall_clock,
        routes: Callable[[web.Application, DaemonPort], None] | None = None,
    ):
        """`routes` adds the pages and API served beside /healthz and /metrics (the
        dashboard: commands/ wires it, so the daemon does not import it)."""
        self.cfg = cfg
        self.routes = routes
        self.clock = clock
        self.stop_event = asyncio.Event()
        self.metrics = Metrics()
        self.outbox = Outbox(on_drop=self._publish_dropped)
        self.dropped_last: float | None = None  # wall time of the last dropped publication
        self.connected = False
        self.broker = None
        self.hub = Hub()  # live changes for the dashboard's WebSockets
        # state topic -> the bed's latest state, held while the broker lags (_state_loop)
        self.unsent_states: dict[str, bytes] = {}
        self.http_port: int | None = None
        self.publish_failing_since: float | None = None  # wall time of the first failure
        self.mllp: MllpServer | None = None  # HL7 v2 over MLLP, when mllp.enabled
        self.supervisor = Supervisor(
            max_failures=cfg["supervise.max_failures"],
            window_s=cfg["supervise.window_s"],
            backoff_min_s=cfg["supervise.backoff_min_s"],
            backoff_max_s=cfg["supervise.backoff_max_s"],
            healthy_after_s=cfg["supervise.healthy_after_s"],
            on_failure=self._task_failed,
            on_fatal=self._fatal,
            stopping=self.stop_event,
        )
        self.fatal_reason = ""
        self.fatal = asyncio.Event()  # set when a task keeps failing: the process must exit
        self.notifier = Notifier()
        self._watchdog_at = 0.0

    async def start(self) -> None:
        cfg = self.cfg
        if not cfg["mqtt.tls_ca"] and not _loopback(cfg["mqtt.host"]):
            log.warning(
                "plain MQTT to %s: readings, patient ids%s travel unencrypted; set "
                "mqtt.tls_ca (docs/deploy.md)",
                cfg["mqtt.host"],
                " and the broker password" if cfg["mqtt.password"] else "",
            )
        if cfg["mqtt.embedded"]:
            self.broker = await start_broker(cfg["mqtt.host"], cfg["mqtt.port"])
        self.edge = MqttEdge(cfg, self._on_message, self._on_connect, self._set_connected)
        subscribed = self.edge.subscribed
        self.metrics.subscribed.set_function(lambda: 1 if subscribed.is_set() else 0)
        self.pipeline = Pipeline.open(
            cfg, self.clock, self.metrics, self.outbox, ack=self.edge.ack_all
        )
        self.store, self.ward = self.pipeline.store, self.pipeline.ward
        self.ward.defer = True  # graded once per state publication, not per reading
        self.ward.tick_after_s = cfg["state.check_interval_s"]
        self.ward.forecast_every_s = cfg["forecast.refresh_s"]
        self.webhooks = Webhooks(clock=self.clock, dead_letter=self._dead_letter)
        public = cfg["http.public_url"] or f"http://{cfg['http.host']}:{cfg['http.port']}"
        self.alerts = Alerting(
            settings=cfg.alerting,
            pipeline=self.pipeline,
            clock=self.clock,
            prefix=cfg.prefix,
            outbox=self.outbox,
            hub=self.hub,
            metrics=self.metrics,
            webhooks=self.webhooks,
            public_url=public,
            audit_key=load_key(cfg.audit_paths()[0]),
        )
        self._anchored = (-1, "")
        self._check_anchor()
        self._audit_reader = self.store.reader()
        self.pipeline.on_committed = self._audit_received
        stop = self.stop_event
        if cfg["mllp.enabled"]:
            self.mllp = MllpServer(
                host=cfg["mllp.host"],
                port=cfg["mllp.port"],
                prefix=cfg.prefix,
                submit=self.pipeline.submit,
                reject=self.pipeline.submit_rejection,
                locations=cfg.mllp_locations(),
                max_bytes=cfg["ingest.max_message_bytes"],
                idle_timeout_s=cfg["mllp.idle_timeout_s"],
                max_connections=cfg["mllp.max_connections"],
                clock=self.clock,
            )
            await self.mllp.start()
        for name, factory in (
            ("pipeline", lambda: self.pipeline.run(stop)),
            ("mqtt", lambda: self.edge.run(stop)),
            ("publisher", self._publish_loop),
            ("state", self._state_loop),
            ("tick", self._tick_loop),
            ("heartbeat", lambda: self.pipeline.heartbeat(stop, self.heartbeat_s)),
            ("retention", self._retention_loop),
        ):
            self.supervise(name, factory)
        if self.mllp is not None:
            mllp = self.mllp
            self.supervise("mllp", lambda: mllp.run(stop))
        app = make_app(self.problems, self.metrics, cfg["http.metrics_token"])
        if self.routes is not None:
            self.routes(app, DaemonPort(self))
        self.http = web.AppRunner(app, access_log=None)
        await self.http.setup()
        site = web.TCPSite(self.http, cfg["http.host"], cfg["http.port"])
        await site.start()
        self.http_port = self.http.addresses[0][1]
        log.info("HTTP on http://%s:%s", cfg["http.host"], self.http_port)
        self.notifier.notify("READY=1")

    @property
    def tasks(self) -> list[asyncio.Task]:
        return list(self.supervisor.tasks.values())

    def supervise(self, name: str, factory: TaskFactory) -> asyncio.Task:
        """Run a long-running task under the daemon's supervisor (see ops/supervisor.py):
        a failure is logged, alerted (tier 3), shown on /healthz and restarted."""
        return self.supervisor.start(name, factory)

    def _publish_dropped(self, n: int) -> None:
        if self.dropped_last is None or time.time() - self.dropped_last >= DROPPED_SHOWN_S:
            log.error("outbox full: the oldest MQTT publication dropped (more may follow)")
        self.dropped_last = time.time()
        self.metrics.publish_dropped.inc(n)

    def problems(self) -> list[str]:
        out = []
        if not self.connected:
            out.append("broker: not connected")
        if not self.pipeline.store_ok:
            out.append(f"store: not writable ({self.pipeline.store_error})")
        if session := self.edge.session_problem():
            out.append(f"session: taken over ({session})")
        out += self.supervisor.problems()
        if self.dropped_last is not None and time.time() - self.dropped_last < DROPPED_SHOWN_S:
            out.append(
                f"mqtt publish: {self.outbox.dropped} publication(s) dropped from the full "
                "outbox (oldest first); the alerts stay stored and on the dashboard"
            )
        if self.publish_failing_since is not None:
            out.append(
                f"mqtt publish: failing for {time.time() - self.publish_failing_since:.0f} s, "
                f"{len(self.outbox.queue)} waiting (retried, none dropped)"
            )
        return out

    def faults(self) -> list[tuple[str, str]]:
        """The daemon's own failures besides the broker and the store, as (kind, reason)
        of tier-3 alerts."""
        out = self.supervisor.faults(TASK_ROLES)
        if session := self.edge.session_problem():
            out.append(("session", f"MQTT session taken over: {session}"))
        return out

    def _task_failed(self, name: str, exc: BaseException) -> None:
        """A supervised task raised: alert now (the tick that would see it may be the
        task that failed)."""
        self.metrics.task_failures.labels(name).inc()
        self.alerts.system(
            self.connected, self.pipeline.store_ok, self.pipeline.store_error, self.faults()
        )

    def _fatal(self, reason: str) -> None:
        self.fatal_reason = reason
        self.fatal.set()

    def _watchdog(self) -> None:
        now = time.monotonic()
        if now - self._watchdog_at >= WATCHDOG_EVERY_S:
            self._watchdog_at = now
            self.notifier.notify("WATCHDOG=1")

    def reload(self) -> str | None:
        """Re-read the config file and apply its [alerts] table (receivers, chains, times).
        A config with any mistake changes nothing: the error is returned and logged.
        Other settings need a restart."""
        if self.cfg.path is None:
            return "no config file to reload"
        try:
            new = config.load(self.cfg.path)
        except config.ConfigError as e:
            log.error("reload refused, nothing changed:\n%s", e)
            return str(e)
        self.alerts.settings = self.alerts.engine.settings = new.alerting
        self.cfg = dataclasses.replace(self.cfg, alerting=new.alerting)
        log.info("reloaded [alerts] from %s", self.cfg.path)
        return None

    async def audit(
        self, name: str, actor: str, detail: dict | None = None, alert_id: str | None = None
    ) -> None:
        """Append a user action to the tamper-evident audit chain (committed on return)."""
        await self.alerts.audit(name, actor, detail, alert_id)

    def _check_anchor(self) -> None:
        """At start: a chain shorter than its last anchor lost records while the daemon
        was away. Said loudly; `audit verify` names them."""
        anchors = [a for a in read_anchors(self.cfg.audit_paths()[1]) or [] if a is not None]
        if anchors and anchors[-1].count > self.alerts.count:
            log.error(
                "audit chain: %d records in the database but %d were anchored at %s: "
                "records were deleted (run `python main.py audit verify`)",
                self.alerts.count,
                anchors[-1].count,
                anchors[-1].ts,
            )

    def _audit_received(self, items) -> None:
        """Care events received over MQTT enter the audit chain (those entered on the
        dashboard are audited there, with their user)."""
        for item in items:
            if item.kind == "care" and item.done is None:
                ev = item.body
                self.alerts.audit_later(
                    "care.received",
                    f"mqtt:{item.ward}/{item.bed}",
                    {
                        "ward": item.ward,
                        "bed": item.bed,
                        "patient_id": item.record.patient_id,
                        "type": ev.type,
                        "data": ev.data,
                    },
                )

    async def _audit_housekeeping(self) -> None:
        """Chain the records other processes queued (`user add`...), then anchor the
        chain's committed (count, head) outside the database: the anchor file and the
        retained `{p}/_daemon/audit`."""
        try:
            rows = audit_inbox(self._audit_reader)
            for row_id, ts, name, actor, detail in rows:
                try:
                    data = orjson.loads(detail)
                except orjson.JSONDecodeError:
                    data = {"malformed": detail[:200]}
                self.alerts.audit_later(name, actor, {**data, "queued_ts": ts, "inbox_id": row_id})
            count, head = self.alerts.count, self.alerts.head
            if count == 0:
                return  # an empty chain: nothing to anchor yet
            if rows or (count, head) != self._anchored:
                await self.pipeline.commit_now()
                # the one writer runs in order: past this, a batch in flight is committed
                await self.store.transact(lambda conn: None)
                if not self.pipeline.store_ok:
                    return
            if rows:
                await self.store.transact(delete_audit_inbox, [r[0] for r in rows])
            if (count, head) != self._anchored:
                anchor = Anchor.of(count, head, utc(self.clock()), self.alerts.audit_key)
                append_anchor(self.cfg.audit_paths()[1], anchor)
                self.outbox.put(
                    f"{self.cfg.prefix}/_daemon/audit", anchor.to_json().encode(), retain=True
                )
                self._anchored = (count, head)
        except Exception as e:  # retried on the next tick
            log.warning("audit anchor not written (%s); retried", e)

    async def save_forecast(self) -> None:
        forecaster = self.ward.forecaster
        if forecaster is None:
            return
        try:
            await self.store.transact(replace_forecast_state, forecaster.to_rows())
        except Exception as e:  # any failure: a failed save is retried next time
            log.warning("forecast not saved (%s); retried later", e)

    def _forecast_gauges(self) -> None:
        if self.ward.forecaster is not None:
            for name, value in self.ward.forecaster.gauges().items():
                self.metrics.forecast.labels(name.removeprefix("forecast_")).set(value)

    def _dead_letter(self, row: dict) -> None:
        self.pipeline.extra.append(("dead_letters", row))
        self.pipeline.wakeup.set()

    # -- callbacks from the MQTT edge ------------------------------------------------------
    def _on_message(self, topic, payload, mid, qos, conn) -> None:
        self.pipeline.on_message(topic, payload, mid, qos, conn)

    def _on_connect(self) -> None:
        # the broker may have lost retained states: every bed is published again
        self.ward.dirty.update(dict.fromkeys(self.ward.beds))

    def _set_connected(self, up: bool) -> None:
        """The broker connection is up (from its CONNACK; the subscription may still be
        pending behind a backlog: crswatch_broker_subscribed) or down."""
        self.connected = up
        self.metrics.connected.set(1 if up else 0)

    # -- loops ---------------------------------------------------------------------------
    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the daemon is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), seconds)
        return self.stop_event.is_set()

    async def _state_loop(self) -> None:
        """Every publish_interval_s: grade the beds with new readings and publish the
        changed states. While messages arrive, grading may take STATE_SHARE of the time:
        when there are more beds than that affords (thousands of beds, or a backlog),
        each bed is graded less often, the earliest touched first, and receiving and
        storing keep the rest of the time (with nothing arriving, grading takes it all).
        Nothing is lost: a bed's every reading is in its state when it is next graded."""
        p = self.cfg.prefix
        interval = pause = self.cfg["state.publish_interval_s"]
        per_bed = 100e-6  # seconds a bed's pass costs, learnt as the passes run
        received = self.pipeline.seq
        while not await self._sleep(pause):
            self._watchdog()  # systemd restarts a daemon whose state loop stops passing
            started = time.perf_counter()
            # with nothing received since the last pass, grading may take all the time
            busy = self.pipeline.seq != received or bool(self.pipeline.pending)
            received = self.pipeline.seq
            share = STATE_SHARE if busy else 1.0
            limit = max(MIN_BEDS_PER_PASS, int(interval * share / per_bed))
            self.pipeline.add_rows(
                self.ward.reassess_touched(
                    self.clock(), self.cfg["state.bed_min_interval_s"], limit
                )
            )
            graded = self.ward.graded_in_pass
            pause = interval
            # The broker lags (a flood's acknowledgements queued ahead): each bed's latest
            # state waits for it, but alerting and the dashboard never wait for the broker
            lagging = self.edge.backlog() > STATE_BACKLOG_MAX
            unsent = self.unsent_states
            if unsent and not lagging:
                self.edge.publish_states(list(unsent.items()))
                unsent.clear()
            states = []
            for ward, bed, view in self.ward.take_dirty():
                state = to_wire(view)
                topic, payload = f"{p}/{ward}/{bed}/state", orjson.dumps(state)
                if lagging:
                    unsent[topic] = payload  # the latest only, sent once the broker keeps up
                else:
                    states.append((topic, payload))
                self.hub.publish({"type": "state", "ward": ward, "bed": bed, "state": state})
                self.alerts.on_state(view)
            self.edge.publish_states(states)  # the pass's states in one write
            self.metrics.admitted.set(len(self.ward.beds))
            self.metrics.grading_backlog.set(len(self.ward.touched))
            self.metrics.input_lag.set(self.ward.input_lag(self.clock()))
            elapsed = time.perf_counter() - started
            if graded >= 10:
                per_bed = 0.7 * per_bed + 0.3 * elapsed / graded
            if graded >= limit:  # beds are waiting: the next pass comes sooner
                pause = elapsed * (1 - share) / share

    async def _tick_loop(self) -> None:
        """Every second: escalations, repeats, snooze expiry and the daemon's own health
        as alerts; every state.check_interval_s: every bed against the clock."""
        last_check = last_save = self.clock()
        pause = 1.0
        while not await self._sleep(pause):
            now = self.clock()
            # a clock set back (negative elapsed time) makes the work due at once
            if not 0 <= now - last_check < self.cfg["state.check_interval_s"]:
                last_check = now
                self.pipeline.add_rows(self.ward.tick(now))
                self._forecast_gauges()
            if not 0 <= now - last_save < self.cfg["forecast.persist_interval_s"]:
                last_save = now
                await self.save_forecast()
            self.alerts.tick(
                self.connected,
                self.pipeline.store_ok,
                self.pipeline.store_error,
                self.faults(),
                self._behind(now),
                self.cfg["vitals.fast_lost_s"],
            )
            self.pipeline.flush_flood(now)
            await self._audit_housekeeping()
            # the next pass in a second, or sooner when a hold ends before then: an alert
            # resolves when its hold is over, not up to a second later (what was due by
            # `now` this pass has done: only a time still ahead shortens the pause)
            ahead = self.alerts.next_due() - now
            pause = max(TICK_MIN_S, ahead) if 0 < ahead < 1.0 else 1.0

    def _behind(self, now: float) -> float:
        """How far the newest reading taken in, any bed, lags the clock (0 with no bed):
        the daemon behind its input or back from being down, not a patient's feed."""
        ward = self.ward
        newest = max(
            (
                b.latest_ts or 0.0
                for adm_id, b in ward.beds.items()
                if (rec := ward.records.get(adm_id)) is not None
                and ward.devices.get((rec.ward, rec.bed)) != "offline"  # its own alert
            ),
            default=None,
        )
        return 0.0 if not newest else max(0.0, now - newest)

    async def _retention_loop(self) -> None:
        """At start and hourly: delete rejections older than storage.rejections_keep_days."""
        keep_s = self.cfg["storage.rejections_keep_days"] * 86400
        if keep_s <= 0:  # kept forever
            await self.stop_event.wait()
            return
        while True:
            cutoff, deleted = self.clock() - keep_s, 0
            while True:
                n = await self.store.transact(prune_rejections, cutoff, PRUNE_BATCH)
                deleted += n
                if n < PRUNE_BATCH:
                    break
            if deleted:
                self.metrics.pruned.inc(deleted)
                log.info("deleted %d rejections older than %s", deleted, iso(cutoff))
            if await self._sleep(RETENTION_EVERY_S):
                return

    async def _publish_loop(self) -> None:
        """The outbox (alerts) onto MQTT, in order. A publication that fails or times out
        is put back at the head and retried; each failure is counted
        (crswatch_publish_failures_total) and, until one goes through again, is a problem
        on /healthz. Nothing is dropped here."""
        queue = self.outbox.queue
        waiting = self.metrics.publish_waiting
        while not self.stop_event.is_set():
            waiting.set(len(queue))
            if not queue:
                self.outbox.ready.clear()
                await self.outbox.ready.wait()
                continue
            await self.edge.subscribed.wait()
            chunk = [queue.popleft() for _ in range(min(len(queue), 200))]
            try:
                results = await asyncio.gather(*(self.edge.publish(*m) for m in chunk))
            except Exception:  # a bug: nothing of the chunk is lost to the restarted loop
                queue.extendleft(reversed(chunk))
                raise
            failed = [m for m, ok in zip(chunk, results, strict=True) if not ok]
            if failed:
                self.metrics.publish_failures.inc(len(failed))
                if self.publish_failing_since is None:
                    self.publish_failing_since = time.time()
                queue.extendleft(reversed(failed))
                waiting.set(len(queue))
                await self._sleep(0.5)
            else:
                self.publish_failing_since = None

    async def stop(self) -> None:
        self.notifier.notify("STOPPING=1")
        self.stop_event.set()
        self.outbox.ready.set()
        self.edge.subscribed.set()  # release the publisher if it waits for a connection
        if self.mllp is not None:  # stop receiving (what waits for its commit is ACKed)
            await self.mllp.close()
        for name in ("mqtt", "pipeline"):  # stop receiving, then commit what was received
            task = self.supervisor.tasks[name]
            try:
                await asyncio.wait_for(task, 15)
            except Exception:
                log.exception("task %s did not stop cleanly", name)
        await self.supervisor.cancel_all()
        self.notifier.close()
        await self.save_forecast()
        await self.http.cleanup()  # the dashboard's last audit records
        await self._audit_housekeeping()
        self._audit_reader.close()
        await self.webhooks.close()
        self.store.close()
        if self.broker is not None:
            await self.broker.shutdown()


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
