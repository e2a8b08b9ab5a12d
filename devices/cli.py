"""`python main.py simulate ...`: the bedside-device simulator (SPEC.md "Commands").

main.py adds these arguments to its `simulate` sub-parser and awaits `run(args)`.
A bad option gives one line on stderr and status 2; a broker that cannot be reached, 1.

Examples:
    python main.py simulate --speed 120 --demo           # a lively ward on localhost:1883
    python main.py simulate --no-mqtt --days 14 --record ward.jsonl --truth truth.jsonl
    python main.py simulate --start=-2d --speed 3600 --days 1.5   # two days, caught up fast
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

import aiomqtt

from .ward import WardOptions, generate, run_ward

PROG = "crswatch simulate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = WardOptions()
    a = parser.add_argument
    a("--beds", type=int, default=d.beds, help="number of beds (default %(default)s)")
    a(
        "--speed",
        type=float,
        default=d.speed,
        help="simulated seconds per wall second, 1 to 3600 (default %(default)s)",
    )
    a(
        "--protocol",
        choices=("json", "fhir", "hl7", "mixed"),
        default=d.protocol,
        help="what the beds speak; mixed: json, fhir, hl7 in turn (default %(default)s)",
    )
    a("--host", default=d.host, help="broker host (default %(default)s)")
    a("--port", type=int, default=d.port, help="broker port (default %(default)s)")
    a("--prefix", default=d.prefix, help="topic prefix (default %(default)s)")
    a("--ward", default=d.ward, help="ward name in the topics (default %(default)s)")
    a(
        "--cohort",
        choices=("autoimmune", "lymphoma", "myeloma", "mixed"),
        default=d.cohort,
        help="patients' indication; mixed: autoimmune or lymphoma, drawn per bed "
        "(default %(default)s)",
    )
    a(
        "--seed",
        type=int,
        default=d.seed,
        help="the same seed gives the same patients and messages (default %(default)s)",
    )
    a("--days", type=float, default=d.days, help="simulated days to run (default %(default)s)")
    a(
        "--start",
        default=None,
        help="simulated start and admission time: ISO 8601 with a zone, or an offset from now: "
        "--start=-2d, --start now-36h, now-90m (default: now)",
    )
    a("--truth", metavar="FILE", help="write ground truth (JSONL): grade changes, artefacts")
    a("--record", metavar="FILE", help="write every message published (JSONL), for replay")
    a(
        "--no-mqtt",
        action="store_true",
        help="no broker: generate and write --record/--truth as fast as possible",
    )
    a("--username", default=None, help="broker user name")
    a("--password", default=None, help="broker password")
    a(
        "--demo",
        action="store_true",
        help="CRS starts within the first day (median 5 h after admission): lively at 120x",
    )
    a(
        "--fast-interval",
        type=float,
        default=d.fast_interval_s,
        metavar="S",
        help="HR, SpO2 and RR every S seconds (default %(default)s)",
    )
    a(
        "--artefacts",
        type=float,
        default=d.artefact_scale,
        metavar="X",
        help="artefact rates times X; 0 for none (default %(default)s)",
    )
    a(
        "--confounders",
        type=float,
        default=d.confounders,
        metavar="X",
        help="rates of what is not CRS (pain, transfusion reaction, late infection, COPD) "
        "times X; 0 for none (default %(default)s)",
    )
    a(
        "--slow-share",
        type=float,
        default=d.slow_share,
        metavar="F",
        help="share of beds whose monitor exports every 5 minutes (default %(default)s)",
    )
    a(
        "--discharge-first",
        action="store_true",
        help="send an empty discharge before each admission (beds reused from an earlier run; "
        "the daemon rejects it when the bed is empty)",
    )


def _error(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


async def run(args: argparse.Namespace) -> int:
    try:
        opts = WardOptions.from_obj(args)
        opts.check()
        opts.start = opts.start_ts()
    except (ValueError, TypeError) as e:
        return _error(str(e))
    try:
        if not opts.mqtt:
            stats = generate(opts)
        else:
            ahead = opts.start + opts.days * 86400 - (time.time() + opts.days * 86400 / opts.speed)
            if ahead > 300:
                print(
                    f"{PROG}: warning: at {opts.speed:g}x the simulated clock runs ahead of "
                    "the wall clock; a daemon on the wall clock rejects readings more than "
                    "300 s in its future (start earlier, e.g. --start=-2d, or run slower)",
                    file=sys.stderr,
                )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            print(
                f"{PROG}: {opts.beds} beds on mqtt://{opts.host}:{opts.port} under "
                f"{opts.prefix}/{opts.ward}/, {opts.speed:g}x; Ctrl-C stops",
                file=sys.stderr,
            )
            stats = await run_ward(opts, None, stop)
    except OSError as e:
        return _error(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}".lstrip(": "))
    except aiomqtt.MqttError as e:
        print(f"{PROG}: broker {opts.host}:{opts.port}: {e}", file=sys.stderr)
        return 1
    print(f"{PROG}: {stats.summary()}", file=sys.stderr)
    return 0
