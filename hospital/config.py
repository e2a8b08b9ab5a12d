"""hospital.toml: the front's address and the daemons it stands before.

    [hospital]
    host = "127.0.0.1"        # the hospital's dashboard
    port = 8080
    public_url = ""           # as in a daemon's [http]
    trusted_proxies = []      # a TLS proxy in front of the front
    daemons = ["ward-a.toml", "ward-b.toml"]   # each daemon's own config, relative to this file

Each daemon's config is loaded and checked as `main.py run` checks it, and the split is
checked as docs/scale-out.md asks: disjoint wards (`+` only when there is one daemon),
and a client id, a SQLite file and a dashboard port of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dashboard.guard import proxy
from monitor.config import Config, ConfigError, read_toml
from monitor.config import load as load_daemon


@dataclass(frozen=True)
class Daemon:
    name: str  # its config's file name without .toml (with its folder's, where needed)
    config_path: Path
    config: Config

    @property
    def wards(self) -> tuple[str, ...]:
        return tuple(self.config["mqtt.wards"])

    @property
    def host(self) -> str:
        """The address the front reaches it at (loopback for a daemon on every address)."""
        host = self.config["http.host"]
        return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.config['http.port']}"

    def owns(self, ward: str) -> bool:
        return "+" in self.wards or ward in self.wards


@dataclass(frozen=True)
class Hospital:
    host: str
    port: int
    public_url: str
    trusted_proxies: tuple[str, ...]
    daemons: tuple[Daemon, ...]

    def owner(self, ward: str) -> Daemon | None:
        return next((d for d in self.daemons if d.owns(ward)), None)


KEYS = {"host", "port", "public_url", "trusted_proxies", "daemons"}


def load(path: str | Path) -> Hospital:
    path = Path(path)
    return from_dict(read_toml(path), path)


def from_dict(data: dict, path: Path) -> Hospital:
    errors: list[str] = []
    unknown = set(data) - {"hospital"}
    if unknown:
        errors.append(f"unknown section(s) {sorted(unknown)}: a hospital file has [hospital] only")
    table = data.get("hospital")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [hospital] is missing")
    for key in sorted(set(table) - KEYS):
        errors.append(f"hospital.{key}: unknown setting (known: {', '.join(sorted(KEYS))})")
    host, port = table.get("host", "127.0.0.1"), table.get("port", 8080)
    public_url, proxies = table.get("public_url", ""), table.get("trusted_proxies", [])
    files = table.get("daemons")
    if not isinstance(host, str):
        errors.append("hospital.host: a string")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        errors.append("hospital.port: 0-65535")
    if not isinstance(public_url, str):
        errors.append("hospital.public_url: a string")
    if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        errors.append("hospital.trusted_proxies: a list of addresses or networks")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        errors.append("hospital.daemons: a list of daemon config files (at least one)")
        files = []
    daemons = []
    paths = [(path.parent / name).resolve() for name in files]
    stems = [p.stem for p in paths]
    for file in paths:
        # named by its file, or by folder and file where two files share a name
        name = file.stem if stems.count(file.stem) == 1 else f"{file.parent.name}/{file.stem}"
        try:
            daemons.append(Daemon(name, file, load_daemon(file)))
        except ConfigError as e:
            errors.append(f"hospital.daemons: {e}")
    errors += split_errors(daemons)
    if errors:
        raise ConfigError("\n".join(f"{path}: {e}" for e in errors))
    return Hospital(host, port, public_url, tuple(proxies), tuple(daemons))


def split_errors(daemons: list[Daemon]) -> list[str]:
    """The rules for a split by ward (docs/scale-out.md): what breaks them."""
    errors = []
    if len({d.name for d in daemons}) < len(daemons):
        errors.append("hospital.daemons: a config file is listed twice")
    if len(daemons) > 1 and any("+" in d.wards for d in daemons):
        errors.append("hospital.daemons: '+' (every ward) on one of several daemons overlaps")
    seen: dict[str, str] = {}
    for d in daemons:
        for ward in d.wards:
            if ward in seen and ward != "+":
                errors.append(f"ward {ward!r} is on both {seen[ward]} and {d.name}")
            seen[ward] = d.name
    for key in ("mqtt.client_id", "storage.path", "http.port"):
        values = [(d.config[key], d.name) for d in daemons]
        if len({v for v, _ in values}) < len(values):
            errors.append(f"{key}: every daemon needs its own ({', '.join(n for _, n in values)})")
    for d in daemons:
        if d.config["http.port"] == 0:
            errors.append(f"{d.name}: http.port must be fixed (not 0): the front connects to it")
        host, trusted = d.host, proxy.networks(d.config["http.trusted_proxies"])
        if host in ("127.0.0.1", "::1") and not proxy.is_trusted(host, trusted):
            errors.append(
                f"{d.name}: http.trusted_proxies must include {host} (the front), or every "
                "user logs in from the front's address and the login throttle counts them as one"
            )
    prefixes = {d.config.prefix for d in daemons}
    if len(prefixes) > 1:
        errors.append(f"mqtt.topic_prefix: one hospital, one prefix (found {sorted(prefixes)})")
    return errors
