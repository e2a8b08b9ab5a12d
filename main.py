"""CRSWatch command line. `python main.py --help` lists the commands (SPEC.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from monitor.config import ConfigError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, exit 2 (SPEC.md)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> Parser:
    p = Parser(prog="crswatch", description="CRSWatch: a bedside monitor for CRS.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def with_config(sp):
        sp.add_argument("--config", default="config.toml", help="config file (TOML)")
        return sp

    with_config(sub.add_parser("run", help="the daemon"))
    demo = sub.add_parser("demo", help="embedded broker + daemon (+ simulated ward)")
    demo.add_argument("--port", type=int, default=1884, help="embedded broker port")
    demo.add_argument("--http-port", type=int, default=8080)
    demo.add_argument("--beds", type=int, default=12)
    demo.add_argument(
        "--speed",
        type=float,
        default=120.0,
        help="simulated seconds per second (default %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=1)
    sub.add_parser("score", help="grade one bedside snapshot (JSON on stdin)")
    ex = with_config(sub.add_parser("export", help="a patient's stored observations"))
    ex.add_argument("--patient", required=True)
    ex.add_argument("--format", choices=("jsonl", "csv", "fhir"), default="jsonl")
    sim = sub.add_parser("simulate", help="bedside-device simulator (a ward over MQTT)")
    from devices.cli import add_arguments as simulate_arguments

    simulate_arguments(sim)
    rp = with_config(
        sub.add_parser(
            "replay", help="recorded messages through grading and alerting, faster than real time"
        )
    )
    rp.add_argument("file", help="JSONL of recorded messages (simulate --record)")
    rp.add_argument("--truth", help="ground truth JSONL (simulate --truth): score the alerts")
    rp.add_argument("--decisions", metavar="OUT", help="write every alert decision (JSONL)")
    rp.add_argument("--states", metavar="OUT", help="write every published bed state (JSONL)")
    rp.add_argument(
        "--report", metavar="FILE", help="with --truth: write every figure, per cohort (JSON)"
    )
    rp.add_argument(
        "--ack-after",
        type=float,
        metavar="S",
        help="a nurse acknowledges every alert that asks someone to act S seconds after it "
        "(default: nobody answers, and unanswered alerts repeat)",
    )
    ev = with_config(
        sub.add_parser(
            "evaluate",
            help="simulate seeded cohorts, replay them, print detection, burden and forecast",
        )
    )
    from commands.evaluate import add_arguments as evaluate_arguments

    evaluate_arguments(ev)
    user = sub.add_parser("user", help="dashboard accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, parser_class=Parser)
    ua = with_config(user_sub.add_parser("add", help="create a user (or reset one)"))
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=("nurse", "physician", "admin"))
    ua.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin instead of prompting",
    )
    for action, text in (
        ("disable", "refuse every login of a user and end its sessions"),
        ("enable", "allow a disabled user to log in again"),
        ("revoke", "end every session of a user (it logs in again)"),
    ):
        with_config(user_sub.add_parser(action, help=text)).add_argument("name")
    from commands.broker import add_arguments as broker_arguments

    broker_arguments(sub)
    from commands.hospital import add_arguments as hospital_arguments

    hospital_arguments(sub)
    audit = sub.add_parser("audit", help="the tamper-evident audit chain")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=Parser)
    av = with_config(audit_sub.add_parser("verify", help="verify the keyed, anchored chain"))
    av.add_argument(
        "--mqtt", action="store_true", help="also check the retained anchor on the broker"
    )
    return p


def _batch_gc() -> None:
    from monitor.ops import gcpolicy

    gcpolicy.for_batch()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "run":
            from commands.run import run_until_signal
            from monitor import config

            return asyncio.run(run_until_signal(config.load(args.config)))
        if args.command == "demo":
            from commands.demo import run_demo

            return asyncio.run(run_demo(args))
        if args.command == "score":
            from monitor.clinical.score import main_score

            code, out, err = main_score(sys.stdin.read())
            sys.stdout.write(out)
            sys.stderr.write(err)
            return code
        if args.command == "export":
            from commands.export import export
            from monitor import config

            return export(config.load(args.config), args.patient, args.format, sys.stdout)
        if args.command == "simulate":
            from devices.cli import run as simulate

            return asyncio.run(simulate(args))
        if args.command == "replay":
            from commands.replay import main_replay
            from monitor import config

            _batch_gc()
            return main_replay(args, config.load(args.config))
        if args.command == "evaluate":
            from commands.evaluate import main_evaluate
            from monitor import config

            _batch_gc()
            return main_evaluate(args, config.load(args.config))
        if args.command == "user":
            from monitor.store.accounts import main_user

            return main_user((argv if argv is not None else sys.argv[1:])[1:], sys.stdin)
        if args.command == "broker":
            from commands import broker

            return broker.run(args)
        if args.command == "hospital":
            from commands.hospital import run_hospital
            from hospital import config as hospital_config

            return asyncio.run(run_hospital(hospital_config.load(args.config), args.front_only))
        if args.command == "audit":
            from commands.audit import audit_verify
            from monitor import config

            return audit_verify(config.load(args.config), args.mqtt)
    except ConfigError as e:
        first, *rest = str(e).splitlines()
        print(
            f"crswatch: config: {first}" + (f" (and {len(rest)} more)" if rest else ""),
            file=sys.stderr,
        )
        for line in rest:
            print(f"crswatch: config: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
