"""How long `replay` takes: a seeded ward recorded by the simulator, replayed through the
daemon's own pipeline (monitor/replay.py) in this process, timed (wall and CPU).

    .venv/bin/python benchmarks/replay_bench.py [--beds 40] [--days 10] [--seed 101]
        [--cohort lymphoma] [--fast-interval 60] [--dir DIR] [--profile OUT.prof]
        [--one-process]

The recording is made once per set of options (`simulate --no-mqtt` with a fixed start,
so the same options give the same messages) and kept in --dir (default a folder under
the system's temporary directory) for the next run. Issue 18 asks for a 40 x 10 ward
(about 600,000 messages) in under 2 minutes. As `main.py replay` does, the routing runs in
a second process (--one-process: in this one, as `evaluate` does), and the garbage
collector is set as `main.py replay` sets it (monitor/ops/gcpolicy.py `for_batch`; before
2026-12-01 this benchmark left CPython's default and timed slower than the command). CPU
counts both processes. Prints one JSON object; asserts nothing. On a shared machine
compare runs made under the same load.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import config as config_mod  # noqa: E402
from monitor.ops import gcpolicy  # noqa: E402
from monitor.replay import replay  # noqa: E402

START = "2026-01-05T08:00:00Z"  # fixed: the recording does not depend on today


def recording(args: argparse.Namespace) -> Path:
    name = (
        f"replay-bench-{args.cohort}-{args.beds}x{args.days:g}-seed{args.seed}"
        f"-fast{args.fast_interval:g}.jsonl"
    )
    path = Path(args.dir) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "main.py"),
                "simulate",
                "--no-mqtt",
                "--beds",
                str(args.beds),
                "--days",
                str(args.days),
                "--cohort",
                args.cohort,
                "--seed",
                str(args.seed),
                "--fast-interval",
                str(args.fast_interval),
                "--start",
                START,
                "--record",
                str(tmp),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tmp.replace(path)
    return path


def cpu_seconds() -> float:
    """CPU time of this process and its ended children (the routing process)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--beds", type=int, default=40)
    p.add_argument("--days", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--cohort", default="lymphoma")
    p.add_argument("--fast-interval", type=float, default=60.0)
    p.add_argument("--config", default=str(ROOT / "config.toml"))
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "crswatch-bench"))
    p.add_argument("--profile", help="write a cProfile of the replay here")
    p.add_argument(
        "--one-process",
        action="store_true",
        help="route in this process too (as evaluate does), not in a second one",
    )
    args = p.parse_args()
    path = recording(args)
    cfg = config_mod.load(args.config)
    gcpolicy.for_batch()  # as `main.py replay` runs it
    profiler = cProfile.Profile() if args.profile else None
    wall, cpu, own = time.perf_counter(), cpu_seconds(), time.process_time()
    if profiler is not None:
        profiler.enable()
    r = replay(path, cfg, split=not args.one_process)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    wall, cpu, own = time.perf_counter() - wall, cpu_seconds() - cpu, time.process_time() - own
    print(
        json.dumps(
            {
                "recording": str(path),
                "messages": r.messages,
                "gradings": r.gradings,
                "states": r.states,
                "decisions": r.decisions,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                # the grading process (this one): the replay's wall time when it is busy all along
                "cpu_grading_s": round(own, 1),
                "messages_per_cpu_s": round(r.messages / cpu) if cpu else None,
                "load_1min": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
