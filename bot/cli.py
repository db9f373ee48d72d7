"""`dockwarden` command line: run | check | update | doctor.

Each subcommand is one function below; they build what they need through bot.app and turn
DockWarden errors into a clear message and a non-zero exit status. The chat libraries are never
imported on the `check` and `update` paths.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from bot.config import Settings, load_settings
from bot.errors import ConfigError, DockWardenError, EngineUnavailable

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but did not succeed (update rolled back or failed)
EXIT_CONFIG = 2  # bad configuration or usage
EXIT_ENGINE = 3  # no Docker engine answers


def _cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    """One check pass; table or JSON on stdout."""
    import asyncio
    import json

    from bot.app import build_checker, build_engine, build_registry, engine_insecure_registries
    from bot.domain import CheckReport
    from bot.errors import ContainerNotFound
    from bot.report import progress, render_table

    engine = build_engine(settings)

    async def one_pass() -> CheckReport:
        insecure = await asyncio.to_thread(engine_insecure_registries, engine)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            checker = build_checker(settings, engine, registry)
            async with progress(sys.stderr, "checking images"):
                return await checker.check(args.names or None)

    try:
        report = asyncio.run(one_pass())
    except ContainerNotFound as exc:
        print(f"dockwarden: no running container named {exc.name!r}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        engine.close()
    if args.json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(render_table(report))
    return EXIT_OK


def _cmd_update(settings: Settings, args: argparse.Namespace) -> int:
    """Update one container through the same path as a chat approval."""
    import asyncio
    import json

    from bot.app import (
        build_engine,
        build_registry,
        build_store,
        build_updater,
        engine_insecure_registries,
    )
    from bot.domain import UpdateOutcome, UpdateResult

    def ask(question: str) -> bool:
        if not sys.stdin.isatty():
            print(f"dockwarden: not updating {args.name}: no terminal to confirm on; "
                  "pass --yes to update without asking", file=sys.stderr)
            return False
        print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
        try:
            answer = input()
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")

    async def update() -> UpdateResult | None:
        insecure = await asyncio.to_thread(engine_insecure_registries, engine)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            updater = build_updater(settings, engine, registry, store)
            for name in await updater.reconcile():
                print(f"dockwarden: settled an interrupted update of {name}", file=sys.stderr)
            expected = None
            if not args.yes:
                preview = await updater.preview(args.name)
                expected = preview.new_digest
                if preview.new_digest != preview.old_digest and not ask(
                    f"Update {preview.container} ({preview.image}) from "
                    f"{preview.old_digest or 'an unknown digest'} to {preview.new_digest}?"
                ):
                    return None
            return await updater.update(args.name, expected_digest=expected, actor="cli")

    engine = build_engine(settings)
    store = build_store(settings)
    try:
        result = asyncio.run(update())
    finally:
        store.close()
        engine.close()
    if result is None:
        print("dockwarden: update aborted; nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(f"{result.container}: {result.outcome.value}: {result.message}")
    ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """The daemon: scheduler plus chat adapters."""
    from bot.app import run_daemon

    return run_daemon(settings)


def _cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check Docker access, registry auth per watched image, chat tokens."""
    import asyncio

    from bot.app import (
        build_checker,
        build_credentials,
        build_engine,
        build_registry,
        engine_insecure_registries,
    )
    from bot.doctor import (
        Finding,
        chat_findings,
        engine_finding,
        registry_findings,
        watched_refs,
    )

    findings: list[Finding] = []
    engine = None
    try:
        engine = build_engine(settings)
    except EngineUnavailable as exc:
        findings.append(Finding("docker", settings.docker_host or "default", False, str(exc)))

    async def registries() -> list[Finding]:
        assert engine is not None
        insecure = await asyncio.to_thread(engine_insecure_registries, engine)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            checker = build_checker(settings, engine, registry)
            refs = await watched_refs(checker)
            if not refs:
                return [Finding("registry", "-", True, "no watched image to look up")]
            return await registry_findings(settings, registry, build_credentials(settings), refs)

    if engine is not None:
        try:
            findings.append(engine_finding(engine))
            findings.extend(asyncio.run(registries()))
        except DockWardenError as exc:
            findings.append(Finding("registry", "-", False, str(exc)))
        finally:
            engine.close()
    from bot.doctor_chat import platform_findings

    findings.extend(chat_findings(settings))
    findings.extend(asyncio.run(platform_findings(settings)))
    for finding in findings:
        print(finding.render())
    if engine is None:
        return EXIT_ENGINE
    return EXIT_OK if all(f.ok for f in findings) else EXIT_FAILED


def _cmd_notify(settings: Settings, args: argparse.Namespace) -> int:
    """`notify --test`: a test alert through every configured channel; exit 1 if one failed."""
    import asyncio

    from bot.notify import send_test_alert

    if not args.test:
        print("dockwarden: notify needs --test (send a test alert through every channel)",
              file=sys.stderr)
        return EXIT_CONFIG
    results = asyncio.run(send_test_alert(settings))
    for result in results:
        print(result.render())
    return EXIT_OK if all(r.error is None for r in results) else EXIT_FAILED


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "check": _cmd_check,
    "update": _cmd_update,
    "run": _cmd_run,
    "doctor": _cmd_doctor,
    "notify": _cmd_notify,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `dockwarden`."""
    parser = argparse.ArgumentParser(
        prog="dockwarden",
        description="Check running containers for newer image digests and update them safely.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="one check pass over the watched containers")
    check.add_argument("--json", action="store_true", help="one JSON document on stdout")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these containers")

    update = sub.add_parser("update", help="pull the newer digest and recreate a container")
    update.add_argument("name", metavar="NAME")
    update.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    update.add_argument("--json", action="store_true", help="one JSON document on stdout")

    sub.add_parser("run", help="the daemon: scheduled checks and chat commands")
    sub.add_parser("doctor", help="check Docker access, registry auth and chat tokens")
    notify = sub.add_parser("notify", help="send a test alert through every configured channel")
    notify.add_argument("--test", action="store_true",
                        help="send the test alert; exit 1 when a channel failed")
    return parser


def configure_logging(level: str, verbose: bool) -> None:
    """Log to stderr; stdout is kept for the command's own output."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO; token endpoints may carry credentials in queries.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dockwarden` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"dockwarden: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, args.verbose)
    try:
        return COMMANDS[args.command](settings, args)
    except EngineUnavailable as exc:
        print(f"dockwarden: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    except ConfigError as exc:
        print(f"dockwarden: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DockWardenError as exc:
        print(f"dockwarden: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
