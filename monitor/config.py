"""Every setting, declared once as (key, default, help). README's table is checked against this.

`load(path)` reads TOML, rejects unknown keys and wrong types with one clear message per
mistake, and returns a frozen `Config`. A failed load changes nothing.
"""

from __future__ import annotations

import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.config import AlertConfigError, AlertSettings, parse_alerting
from monitor.clinical.thresholds import NAME as _NAME


@dataclass(frozen=True)
class Setting:
    key: str  # "section.name"
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("mqtt.host", "127.0.0.1", "Broker host."),
    Setting("mqtt.port", 1883, "Broker port."),
    Setting("mqtt.topic_prefix", "crs", "Every topic starts with it (`{p}` in SPEC.md)."),
    Setting(
        "mqtt.client_id",
        "crswatch",
        "Fixed client id, so the broker keeps the session (and queued QoS 1 messages) "
        "across restarts.",
    ),
    Setting("mqtt.embedded", False, "true: start the embedded amqtt broker on host:port."),
    Setting(
        "mqtt.protocol",
        "3.1.1",
        'MQTT version, "3.1.1" or "5". 3.1.1 is faster here (paho parses MQTT 5 '
        "properties on every message: 9,600 against 5,400 msg/s); the broker's "
        "max_inflight_messages then bounds the messages in flight to the daemon (set it "
        "to 1000 in Mosquitto). With 5 the daemon sets that bound itself "
        "(receive_maximum).",
    ),
    Setting(
        "mqtt.receive_maximum",
        10000,
        "MQTT 5 only: unacknowledged QoS 1 messages in flight to the daemon; bounds its "
        "ingest memory.",
    ),
    Setting(
        "mqtt.session_expiry_s",
        14 * 86400,
        "MQTT 5: how long the broker keeps the daemon's session while it is away.",
    ),
    Setting(
        "mqtt.wards",
        ["+"],
        "Ward filters this daemon subscribes to (`+` = all); lets several daemons "
        "split a hospital by ward.",
    ),
    Setting("mqtt.username", "", "Broker user name (empty: none)."),
    Setting("mqtt.password", "", "Broker password."),
    Setting(
        "mqtt.tls_ca",
        "",
        "CA certificate file; set it to connect with TLS (TLS 1.2 or later, the broker's "
        "certificate and host name verified).",
    ),
    Setting(
        "mqtt.tls_cert",
        "",
        "Client certificate file (mutual TLS). Refused at start without mqtt.tls_ca "
        "(it would connect in plain text), or when it cannot be loaded.",
    ),
    Setting(
        "mqtt.tls_key",
        "",
        "Client key file (mutual TLS); needs mqtt.tls_cert (empty: the key is in that file).",
    ),
    Setting("mqtt.reconnect_min_s", 0.5, "First reconnect delay; doubles up to the max."),
    Setting("mqtt.reconnect_max_s", 30.0, "Longest reconnect delay."),
    Setting("storage.path", "data/crswatch.db", "SQLite file (created with its folder)."),
    Setting(
        "storage.rejections_keep_days",
        30.0,
        "Stored rejections older than this are deleted (hourly); 0 keeps them forever.",
    ),
    Setting("storage.batch_max", 2000, "Most messages committed in one transaction."),
    Setting(
        "storage.busy_timeout_s",
        5.0,
        "How long a write waits for a lock held by another process before it fails "
        "(and is retried; nothing is acknowledged meanwhile).",
    ),
    Setting("http.host", "127.0.0.1", "Dashboard and API address."),
    Setting("http.port", 8080, "Dashboard and API port (0: any free port)."),
    Setting("ingest.max_message_bytes", 262144, "Larger messages are rejected."),
    Setting(
        "ingest.max_rate_per_bed",
        50.0,
        "Messages per second a bed may send on average; past that (and its burst) its "
        "messages are rejected with a reason, so one flooding device cannot starve the "
        "ward.",
    ),
    Setting(
        "ingest.burst_per_bed",
        2000.0,
        "Messages a bed may send at once above its rate (a gateway flushing a buffer).",
    ),
    Setting(
        "ingest.unserved_rate",
        50.0,
        "Messages per second, all together, for beds without an admission (device status "
        "before an admission, admits) and any bed or ward name we do not serve: one shared "
        "bucket, so invented topic names cannot dodge the rate limit. Past it (and its "
        "burst) they are rejected before decoding, one stored row a minute with their count.",
    ),
    Setting(
        "ingest.unserved_burst",
        2000.0,
        "Messages for beds without an admission accepted at once above ingest.unserved_rate.",
    ),
    Setting(
        "ingest.rejected_payload_max",
        4096,
        "Bytes of a rejected message's payload that are stored (its topic is cut to 160 "
        "characters); the rest is dropped, the reason says how long it was when relevant.",
    ),
    Setting(
        "ingest.max_pending",
        50000,
        "Received messages waiting for their commit. Past it, QoS 0 messages are "
        'rejected ("ingest queue full"); QoS 1 ones are never refused: the broker holds '
        "them, bounded by mqtt.receive_maximum.",
    ),
    Setting(
        "ingest.max_future_s",
        300.0,
        "A reading timestamped further ahead of the daemon's clock is rejected.",
    ),
    Setting("ingest.max_past_s", 14 * 86400.0, "A reading older than this is rejected."),
    Setting(
        "ingest.local_timezone",
        "",
        'IANA zone (e.g. "Europe/Berlin") of device times sent without one (HL7 v2 local '
        "time when MSH-7 has no zone either; FHIR gateways that drop the zone). Empty: such "
        "times are rejected with a reason naming this key. A local time that a daylight-"
        "saving change makes ambiguous or skips is always rejected.",
    ),
    Setting(
        "ingest.ward_timezones",
        [],
        'Per-ward exceptions to ingest.local_timezone, as "WARD=Zone" (e.g. '
        '["annex=Europe/London"]).',
    ),
    Setting(
        "mllp.enabled",
        False,
        "true: listen for HL7 v2 ORU^R01 over MLLP (central stations and gateways: Philips "
        "PIC iX, GE CARESCAPE Gateway, Mindray eGateway); each message is ACKed after commit.",
    ),
    Setting("mllp.host", "127.0.0.1", "MLLP listen address."),
    Setting("mllp.port", 2575, "MLLP listen port (0: any free port)."),
    Setting(
        "mllp.locations",
        [],
        'Where a message goes, as "PV1-3.1/PV1-3.3=ward/bed" (e.g. ["7WEST/BED03=icu/3"]). '
        "A location not listed goes to ward PV1-3.1, bed PV1-3.3 as sent.",
    ),
    Setting(
        "mllp.idle_timeout_s",
        900.0,
        "A connection that sends nothing this long is closed (senders reconnect); a message "
        "started must be complete within 30 s.",
    ),
    Setting("mllp.max_connections", 64, "Connections served at once; more are refused."),
    Setting(
        "state.publish_interval_s",
        0.05,
        "How often the beds changed since the last pass are graded and their states "
        "published: the longest a new reading waits for its state.",
    ),
    Setting(
        "state.bed_min_interval_s",
        0.5,
        "A bed's state is graded and published at most this often, however many "
        "readings arrive (a backlog or a flooding device cannot swamp the ward).",
    ),
    Setting(
        "state.check_interval_s",
        5.0,
        "How often every bed is re-assessed against the clock (stale and lost vitals).",
    ),
    Setting("vitals.fast_stale_s", 60.0, "HR, SpO2, RR: stale after this many seconds."),
    Setting("vitals.fast_lost_s", 300.0, "HR, SpO2, RR: lost (unknown) after this."),
    Setting("vitals.bp_stale_s", 3900.0, "Blood pressure (NIBP every 15-60 min): stale after."),
    Setting("vitals.bp_lost_s", 7800.0, "Blood pressure: lost after."),
    Setting("vitals.temp_stale_s", 5 * 3600.0, "Temperature: stale after."),
    Setting("vitals.temp_lost_s", 9 * 3600.0, "Temperature: lost after."),
    Setting("vitals.acvpu_stale_s", 5 * 3600.0, "Consciousness (ACVPU): stale after."),
    Setting("vitals.acvpu_lost_s", 13 * 3600.0, "Consciousness (ACVPU): lost after."),
    Setting(
        "forecast.enabled",
        True,
        "Forecast the risk of CRS grade >= 2 within 12 h for patients below grade 2 "
        "(research only: not clinically validated).",
    ),
    Setting(
        "forecast.model_path",
        "forecast/model.pkl",
        "The initial model (relative paths: from the project folder); once the ward has "
        "taught it, the learned model in the database is used instead.",
    ),
    Setting("forecast.learn", True, "Learn online from the ward's own outcomes."),
    Setting(
        "forecast.interval_s",
        1800.0,
        "A patient's features are kept as a learning example this often.",
    ),
    Setting(
        "forecast.refresh_s",
        300.0,
        "A bed's risk is recomputed at most this often, and at once when a grade "
        "changes (the forecast looks 12 hours ahead; its features move over minutes, and "
        "the model learned from assessments 5 minutes apart).",
    ),
    Setting(
        "forecast.persist_interval_s",
        300.0,
        "How often the model and its pending examples are saved (atomically).",
    ),
    Setting(
        "supervise.max_failures",
        5,
        "A daemon task (ingest, grading, ticks, publishing...) that fails this many times "
        "within supervise.window_s is not restarted again: the daemon exits with status 1 "
        "so that its service manager (systemd) restarts the process.",
    ),
    Setting("supervise.window_s", 300.0, "The window of supervise.max_failures."),
    Setting(
        "supervise.backoff_min_s",
        0.5,
        "A failed task is restarted after this delay, doubling at each failure.",
    ),
    Setting("supervise.backoff_max_s", 30.0, "The longest delay before a restart."),
    Setting(
        "supervise.healthy_after_s",
        30.0,
        "A restarted task is healthy again (gone from /healthz, its alert resolving) once "
        "it has run this long without failing.",
    ),
    Setting(
        "http.public_url",
        "",
        "The dashboard's address as staff reach it; pager and webhook messages link to "
        "{public_url}/alerts/{id}. Empty: http://{http.host}:{http.port}.",
    ),
    Setting(
        "http.trusted_proxies",
        [],
        "Addresses of reverse proxies (TLS terminators) whose X-Forwarded-Proto and "
        "X-Forwarded-For are believed; from any other peer they are ignored.",
    ),
    Setting(
        "http.allowed_hosts",
        [],
        "Host names the dashboard answers to (the Host header); others get 421 (DNS "
        "rebinding). Empty: localhost, http.host, the host of http.public_url and IP "
        "addresses.",
    ),
    Setting(
        "http.session_max_s",
        12 * 3600.0,
        "A session ends this long after its login, however active.",
    ),
    Setting(
        "http.session_idle_s",
        1800.0,
        "A session unused this long ends (an open live page counts as use).",
    ),
    Setting(
        "http.metrics_token",
        "",
        "When set, /metrics needs `Authorization: Bearer <token>`; when empty it answers "
        "only to loopback peers.",
    ),
    Setting(
        "http.login_workers",
        2,
        "Password checks (argon2, 64 MiB each) run at once, in their own threads.",
    ),
    Setting(
        "http.login_queue",
        16,
        "Logins waiting for a password check; past it a login gets 503 at once, so a "
        "flood cannot slow the rest of the dashboard.",
    ),
    Setting(
        "audit.key_path",
        "",
        "HMAC key of the audit chain (created 0600 when missing). Empty: "
        "{storage.path}.audit-key. Keep it where a database intruder cannot read it.",
    ),
    Setting(
        "audit.anchor_path",
        "",
        "Append-only file where the daemon writes the chain's count and head. Empty: "
        "{storage.path}.audit-anchor.",
    ),
)
BY_KEY = {s.key: s for s in SETTINGS}
# [alerts] (tiers, chains, receivers, times) is validated whole by alerts.config.
SECTIONS = sorted({s.key.split(".")[0] for s in SETTINGS} | {"alerts"})


class ConfigError(Exception):
    """One or more mistakes in the configuration; str() lists each on its own line."""


def _put(values: dict[str, Any], key: str, value: Any, errors: list[str]) -> None:
    """Set one setting by dotted key into `values`, or say in `errors` why not (an unknown
    key, a wrong type); a float setting takes an int as a float."""
    setting = BY_KEY.get(key)
    if setting is None:
        errors.append(f"{key}: unknown key")
    elif not _type_ok(setting.default, value):
        errors.append(
            f"{key}: expected {type(setting.default).__name__}, got {type(value).__name__}"
        )
    else:
        values[key] = float(value) if isinstance(setting.default, float) else value


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, type(default))


def _check(values: dict[str, Any]) -> list[str]:
    errors = []
    if values["mqtt.protocol"] not in ("5", "3.1.1"):
        errors.append('mqtt.protocol: must be "5" or "3.1.1"')
    for key in ("mqtt.port", "http.port", "mllp.port"):
        if not 0 <= values[key] <= 65535:
            errors.append(f"{key}: {values[key]} is not a port number")
    if not _NAME.match(values["mqtt.topic_prefix"]):
        errors.append("mqtt.topic_prefix: 1-32 of A-Z a-z 0-9 _ -")
    for ward in values["mqtt.wards"]:
        if ward != "+" and not _NAME.match(ward):
            errors.append(f"mqtt.wards: {ward!r} is not a ward name or +")
    if not values["mqtt.wards"]:
        errors.append("mqtt.wards: at least one ward filter")
    for kind in ("fast", "bp", "temp", "acvpu"):
        if values[f"vitals.{kind}_stale_s"] >= values[f"vitals.{kind}_lost_s"]:
            errors.append(f"vitals.{kind}_stale_s must be shorter than vitals.{kind}_lost_s")
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            errors.append(f"{key}: must not be negative")
    if values["http.login_workers"] < 1:
        errors.append("http.login_workers: at least 1")
    if values["http.session_idle_s"] <= 0 or values["http.session_max_s"] <= 0:
        errors.append("http.session_idle_s, http.session_max_s: must be above 0")
    errors += _check_ingest(values)
    errors += _tls_errors(values)
    if values["supervise.max_failures"] < 1:
        errors.append("supervise.max_failures: at least 1")
    if values["mqtt.embedded"] and values["mqtt.protocol"] != "3.1.1":
        errors.append('mqtt.embedded: the embedded broker needs mqtt.protocol = "3.1.1"')
    return errors


def zone(name: str) -> ZoneInfo | None:
    """An IANA zone by name; None for "" (no site zone)."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None


def _pair(entry: str, key: str, value_name: str) -> tuple[str, str]:
    left, sep, right = entry.partition("=")
    if not sep or not left.strip() or not right.strip():
        raise ValueError(f'{key}: {entry!r} is not "{value_name}"')
    return left.strip(), right.strip()


def _check_ingest(values: dict[str, Any]) -> list[str]:
    errors = []
    try:
        zone(values["ingest.local_timezone"])
    except ValueError as e:
        errors.append(f"ingest.local_timezone: {e}")
    for entry in values["ingest.ward_timezones"]:
        try:
            ward, name = _pair(entry, "ingest.ward_timezones", "WARD=Zone")
            zone(name)
            if not _NAME.match(ward):
                raise ValueError(f"ingest.ward_timezones: {ward!r} is not a ward name")
        except ValueError as e:
            errors.append(str(e) if str(e).startswith("ingest.") else f"ingest.ward_timezones: {e}")
    for entry in values["mllp.locations"]:
        try:
            _, place = _pair(entry, "mllp.locations", "PV1-3.1/PV1-3.3=ward/bed")
            ward, _, bed = place.partition("/")
            if not (_NAME.match(ward) and _NAME.match(bed)):
                raise ValueError(f"mllp.locations: {place!r} is not ward/bed")
        except ValueError as e:
            errors.append(str(e))
    return errors


def tls_context(values: dict[str, Any]) -> ssl.SSLContext | None:
    """The client's TLS context from mqtt.tls_* (None: plain MQTT). Verifies the broker's
    certificate and host name against mqtt.tls_ca; raises OSError or ssl.SSLError."""
    if not values["mqtt.tls_ca"]:
        return None
    ctx = ssl.create_default_context(cafile=values["mqtt.tls_ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if values["mqtt.tls_cert"]:
        ctx.load_cert_chain(values["mqtt.tls_cert"], values["mqtt.tls_key"] or None)
    return ctx


def _tls_errors(values: dict[str, Any]) -> list[str]:
    """TLS settings that cannot work, or that would silently connect in plain text."""
    ca, cert, key = (values[f"mqtt.tls_{k}"] for k in ("ca", "cert", "key"))
    if (cert or key) and not ca:
        return [
            "mqtt.tls_cert/mqtt.tls_key are set but mqtt.tls_ca is empty: the daemon would "
            "connect without TLS; set mqtt.tls_ca to the broker's CA certificate"
        ]
    if key and not cert:
        return ["mqtt.tls_key is set without mqtt.tls_cert: a client key needs its certificate"]
    if values["mqtt.password"] and not values["mqtt.username"]:
        return ["mqtt.password is set without mqtt.username"]
    for name, path in (("tls_ca", ca), ("tls_cert", cert), ("tls_key", key)):
        if path and not Path(path).is_file():
            return [f"mqtt.{name}: no such file: {path}"]
    if values["mqtt.embedded"] and ca:
        return ["mqtt.tls_ca: the embedded broker speaks plain MQTT only"]
    try:
        tls_context(values)
    except (OSError, ssl.SSLError) as e:
        what = "mqtt.tls_cert/mqtt.tls_key" if cert else "mqtt.tls_ca"
        return [f"{what}: cannot be loaded ({e})"]
    return []


@dataclass(frozen=True)
class Config:
    values: dict[str, Any]
    path: Path | None = None
    alerting: AlertSettings = field(default_factory=lambda: parse_alerting({}))

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed, by dotted key (`**{"storage.path": ...}`),
        validated as `load` validates a file: an unknown key, a wrong type or a value that
        breaks a rule raises ConfigError. Every other setting (and [alerts]) is kept."""
        values = dict(self.values)
        errors: list[str] = []
        for key, value in changes.items():
            _put(values, key, value, errors)
        errors = errors or _check(values)
        if errors:
            raise ConfigError("\n".join(errors))
        return Config(values, self.path, self.alerting)

    @property
    def prefix(self) -> str:
        return self.values["mqtt.topic_prefix"]

    def audit_paths(self) -> tuple[str, str]:
        """(key file, anchor file) of the audit chain."""
        db = self.values["storage.path"]
        key = self.values["audit.key_path"] or f"{db}.audit-key"
        anchor = self.values["audit.anchor_path"] or f"{db}.audit-anchor"
        return key, anchor

    def timezones(self) -> tuple[ZoneInfo | None, dict[str, ZoneInfo]]:
        """The site's zone for device times sent without one, and each ward's exception."""
        wards = {}
        for entry in self.values["ingest.ward_timezones"]:
            ward, name = _pair(entry, "ingest.ward_timezones", "WARD=Zone")
            wards[ward] = ZoneInfo(name)
        return zone(self.values["ingest.local_timezone"]), wards

    def mllp_locations(self) -> dict[str, tuple[str, str]]:
        """'PV1-3.1/PV1-3.3' as sent -> (ward, bed)."""
        table = {}
        for entry in self.values["mllp.locations"]:
            where, place = _pair(entry, "mllp.locations", "PV1-3.1/PV1-3.3=ward/bed")
            ward, _, bed = place.partition("/")
            table[where] = (ward, bed)
        return table

    def windows(self) -> dict[str, tuple[float, float]]:
        """Per vital: (stale_after_s, lost_after_s)."""
        v = self.values
        pick = {
            "hr": "fast",
            "rr": "fast",
            "spo2": "fast",
            "sbp": "bp",
            "dbp": "bp",
            "map": "bp",
            "temp_c": "temp",
            "acvpu": "acvpu",
            "o2_flow_lpm": "fast",
            "fio2": "fast",
        }
        return {
            name: (v[f"vitals.{k}_stale_s"], v[f"vitals.{k}_lost_s"]) for name, k in pick.items()
        }


def from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    values = {s.key: s.default for s in SETTINGS}
    errors = []
    alerting = None
    try:
        alerting = parse_alerting(data.get("alerts") or {})
    except AlertConfigError as e:
        errors += e.errors
    for section, table in data.items():
        if section == "alerts":
            continue
        if section not in SECTIONS or not isinstance(table, dict):
            errors.append(f"[{section}]: unknown section (known: {', '.join(SECTIONS)})")
            continue
        for name, value in table.items():
            _put(values, f"{section}.{name}", value, errors)
    if not errors:
        errors = _check(values)
    if errors:
        where = f"{path}: " if path else ""
        raise ConfigError("\n".join(where + e for e in errors))
    assert alerting is not None  # parsed whenever there were no errors
    return Config(values, path, alerting)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables, or ConfigError saying why not."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def load(path: str | Path) -> Config:
    path = Path(path)
    return from_dict(read_toml(path), path)
