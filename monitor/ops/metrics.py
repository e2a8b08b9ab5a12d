"""Prometheus metrics (SPEC.md names), one registry per daemon so tests can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.received = Counter(
            "crswatch_messages_received_total", "MQTT messages received", ["kind"], registry=r
        )
        self.rejected = Counter(
            "crswatch_messages_rejected_total",
            "Messages rejected (stored and published on {p}/rejected)",
            registry=r,
        )
        self.duplicates = Counter(
            "crswatch_messages_duplicate_total",
            "Messages already stored (redeliveries), acknowledged",
            registry=r,
        )
        self.stored = Counter(
            "crswatch_observations_stored_total",
            "New time points stored, one per bed and time",
            registry=r,
        )
        self.alerts = Counter(
            "crswatch_alerts_total", "Alert events", ["tier", "event"], registry=r
        )
        self.store_errors = Counter(
            "crswatch_store_errors_total",
            "Failed commits (retried; nothing acknowledged)",
            registry=r,
        )
        self.grade_changes = Counter(
            "crswatch_grade_changes_total", "Changes of a patient's grades", registry=r
        )
        self.commit_seconds = Histogram(
            "crswatch_commit_seconds",
            "Time to commit one batch to SQLite",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.gc_pause = Histogram(
            "crswatch_gc_pause_seconds",
            "Pauses of the event loop for garbage collection",
            ["generation"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self.grading_backlog = Gauge(
            "crswatch_grading_backlog",
            "Beds with readings not yet graded (more than a "
            "pass could grade within its share of time)",
            registry=r,
        )
        self.input_lag = Gauge(
            "crswatch_input_lag_seconds",
            "How old the freshest reading of the last minute was when applied: the "
            "daemon's own lag (feeds are judged that far behind the clock)",
            registry=r,
        )
        self.batch_size = Gauge(
            "crswatch_last_batch_size", "Messages in the last commit", registry=r
        )
        self.pending = Gauge(
            "crswatch_ingest_pending", "Messages received, not yet committed", registry=r
        )
        self.connected = Gauge(
            "crswatch_broker_connected",
            "1 when connected to the broker (from its CONNACK)",
            registry=r,
        )
        self.subscribed = Gauge(
            "crswatch_broker_subscribed",
            "1 once subscribed on the present connection (its SUBACK; a persistent "
            "session's queued readings are received before it)",
            registry=r,
        )
        self.forecast = Gauge(
            "crswatch_forecast",
            "The forecast's state and its quality by "
            "delayed progressive validation (AUROC, Brier, calibration)",
            ["measure"],
            registry=r,
        )
        self.publish_failures = Counter(
            "crswatch_publish_failures_total",
            "Publications on MQTT (alerts) that failed or timed out: each is kept and "
            "retried until the broker takes it, never dropped",
            registry=r,
        )
        self.publish_dropped = Counter(
            "crswatch_publish_dropped_total",
            "Publications (alerts) dropped from a full outbox, oldest first, after a long "
            "broker outage (the alerts themselves stay stored and on the dashboard)",
            registry=r,
        )
        self.publish_waiting = Gauge(
            "crswatch_publish_waiting",
            "Publications (alerts) waiting to go out on MQTT, retries included",
            registry=r,
        )
        self.task_failures = Counter(
            "crswatch_task_failures_total",
            "Failures of the daemon's supervised tasks (each logged, alerted, restarted)",
            ["task"],
            registry=r,
        )
        self.internal_errors = Counter(
            "crswatch_internal_errors_total",
            "Messages rejected because decoding raised an unexpected exception (a bug)",
            ["decoder", "exception"],
            registry=r,
        )
        self.pruned = Counter(
            "crswatch_rejections_pruned_total",
            "Stored rejections deleted after storage.rejections_keep_days",
            registry=r,
        )
        self.admitted = Gauge("crswatch_beds_admitted", "Beds with an active admission", registry=r)
