"""`dockwarden` command line: run | check | update | doctor.

Each subcommand is one function below; they build what they need through bot.entrypoints.bootstrap
and turn DockWarden errors into a clear message and a non-zero exit status. The chat libraries are
never imported on the `check` and `update` paths.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.config.settings import Settings, load_settings
from bot.entrypoints.one_shot import error_document
from bot.errors import ConfigError, ContainerNotFound, DockWardenError, EngineUnavailable

if TYPE_CHECKING:
    from bot.store.db import Store
    from bot.update.hosts import HostUpdaters

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but did not succeed (update rolled back or failed)
EXIT_CONFIG = 2  # bad configuration or usage, or no such container
EXIT_ENGINE = 3  # no Docker engine answers


def _cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    """One check pass; table or JSON on stdout."""
    import asyncio
    import json

    from bot.domain.model import CheckReport
    from bot.entrypoints.bootstrap import (
        build_checker,
        build_engines,
        build_registry,
        hosts_insecure_registries,
    )
    from bot.entrypoints.report import progress, render_table

    engines = build_engines(settings)

    async def one_pass() -> CheckReport:
        insecure = await hosts_insecure_registries(engines)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            checker = build_checker(settings, engines, registry)
            async with progress(sys.stderr, "checking images"):
                return await checker.check(args.names or None)

    try:
        report = asyncio.run(one_pass())
    finally:
        for engine in engines.values():
            engine.close()
    if args.json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(render_table(report))
    return EXIT_OK


def _cmd_update(settings: Settings, args: argparse.Namespace) -> int:
    """Update one container through the same path as a chat approval."""
    from bot.domain.model import UpdateOutcome, UpdateResult
    from bot.entrypoints.cli_alerts import CommandAlerts
    from bot.entrypoints.one_shot import print_aborted, print_outcome, run_with_updater
    from bot.entrypoints.report import Status, confirm, progress
    from bot.usecases.update_service import UpdateService

    status = Status(f"updating {args.name}: pulling the new image, then stopping the old one")

    def moved_on(step: str) -> None:
        label = _STEP_LABELS.get(step)
        if label is not None:
            status.label = label.format(name=args.name, timeout=settings.health_timeout)

    def ask(question: str) -> bool:
        return confirm(question, without_terminal=f"not updating {args.name}: no terminal to "
                       "confirm on; pass --yes to update without asking")

    async def update(updater: HostUpdaters, store: Store) -> UpdateResult | None:
        expected = None
        name = await updater.resolve(args.name)  # NAME or HOST/NAME, as chat takes it
        if not args.yes:
            preview = await updater.preview(name)
            expected = preview.new_digest
            if preview.new_digest != preview.old_digest and not ask(
                f"Update {preview.container} ({preview.image}) from "
                f"{preview.old_digest or 'an unknown digest'} to {preview.new_digest}?"
            ):
                return None
        # The path of a chat /pull: recorded, the open update settled, the outcome alerted.
        updates = UpdateService(store, updater, CommandAlerts(settings, store, sys.stderr))
        async with progress(sys.stderr, status):
            return await updates.apply(
                name, update=None, actor=cli_actor(), action="pull", digest=expected
            )

    result = run_with_updater(settings, update, after_step=moved_on)
    if result is None:
        print_aborted("update", as_json=args.json)
        return EXIT_FAILED
    print_outcome(result, as_json=args.json)
    ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
    return EXIT_OK if ok else EXIT_FAILED


# What `update` is doing once the replacer has finished a step (shown on a terminal).
_STEP_LABELS = {
    "stop": "recreating {name} with the new image",
    "start": "waiting for {name} to be healthy (up to {timeout:g}s)",
    "health": "{name} is healthy; removing the old container",
}


def _cmd_rollback(settings: Settings, args: argparse.Namespace) -> int:
    """Put a container back on the image it ran before its last update (see rollback_cli.py)."""
    from bot.entrypoints.rollback_cli import run

    return run(settings, args, cli_actor())


def cli_actor() -> str:
    """How the history names whoever ran the command: `cli:alice`."""
    import getpass
    import os

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # a uid without a passwd entry (in a container)
        return f"cli:uid{os.getuid()}"


def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """The daemon: scheduler plus chat adapters."""
    from bot.entrypoints.daemon import run_daemon

    return run_daemon(settings)


def _cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check Docker access, registry auth per watched image, chat tokens."""
    from bot.entrypoints.doctor_cli import doctor

    findings, engine_reached = doctor(settings)
    for finding in findings:
        print(finding.render())
    if not engine_reached:
        return EXIT_ENGINE
    return EXIT_OK if all(f.ok for f in findings) else EXIT_FAILED


def _cmd_notify(settings: Settings, args: argparse.Namespace) -> int:
    """`notify --test`: a test alert through every configured channel; exit 1 if one failed."""
    import asyncio

    from bot.entrypoints.notify_test import send_test_alert

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
    "rollback": _cmd_rollback,
    "run": _cmd_run,
    "doctor": _cmd_doctor,
    "notify": _cmd_notify,
}


EXIT_CODES = f"""exit status:
  {EXIT_OK}  the command did what was asked (check: the pass ran, whatever it found)
  {EXIT_FAILED}  it ran but did not succeed (update rolled back, failed or was not confirmed;
     doctor found a problem)
  {EXIT_CONFIG}  bad configuration or usage, or no container of that name
  {EXIT_ENGINE}  no Docker engine answers on DOCKER_HOST (or the default socket)

Settings come from the environment and an env file: --env-file, else DOCKWARDEN_ENV_FILE,
else .env in the working directory. Every variable is explained in .env.example."""


class _Formatter(argparse.HelpFormatter):
    """Wraps one-paragraph texts; keeps texts laid out in lines (the exit codes) as they are."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v and --env-file, accepted before and after the subcommand."""
    # After the subcommand the values land in their own names (a subparser's defaults would
    # otherwise overwrite what was given before it); main() adds the two up.
    suffix = "" if top else "_after"
    parser.add_argument(
        "-v", "--verbose", action="count", dest=f"verbose{suffix}",
        default=0 if top else argparse.SUPPRESS,
        help="-v: DockWarden's debug log; -vv: every library's too",
    )
    parser.add_argument(
        "--env-file", metavar="PATH", dest=f"env_file{suffix}",
        default=None if top else argparse.SUPPRESS,
        help="read settings from this file (default: $DOCKWARDEN_ENV_FILE, else ./.env)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `dockwarden`."""
    from bot import __version__

    parser = argparse.ArgumentParser(
        prog="dockwarden",
        description="Check running containers for newer image digests and update them safely.",
        epilog=EXIT_CODES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"dockwarden {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        made = sub.add_parser(
            name, help=summary, description=description, epilog=EXIT_CODES,
            formatter_class=_Formatter,
        )
        _common(made, top=False)
        return made

    check = command(
        "check", "one check pass over the watched containers",
        "Look up each watched container's image in its registry once and print what is up to "
        "date, what has an update, what was skipped and why. Changes nothing.",
    )
    check.add_argument("--json", action="store_true", help="one JSON document on stdout")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these containers")

    update = command(
        "update", "pull the newer digest and recreate a container",
        "Update one container now, as an approval in chat would: pull the new digest, "
        "recreate the container with its configuration, wait until it is healthy, roll back "
        "when it is not. The pending update is settled and the outcome alerted.",
    )
    update.add_argument(
        "name", metavar="NAME", help="the container (or Swarm service) to update, by name or id"
    )
    update.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    update.add_argument("--json", action="store_true", help="one JSON document on stdout")
    rollback = command(
        "rollback", "put a container back on the image it ran before its last update",
        "Roll one container (or Swarm service) back to the image and digest it ran before its "
        "last update, keeping its configuration and volumes, with the same health gate as an "
        "update. The digest rolled back from is offered for approval only from then on. "
        "Exit 0 when rolled back, 1 when there was nothing to roll back or it failed.",
    )
    rollback.add_argument("name", metavar="NAME", help="the container or Swarm service")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.add_argument("--json", action="store_true", help="one JSON document on stdout")

    command(
        "run", "the daemon: scheduled checks and chat commands",
        "Run until stopped: check passes on DOCKWARDEN_SCHEDULE, alerts to the configured chats "
        "(or the console), and chat commands.",
    )
    command(
        "doctor", "check Docker access, registry auth, the database and chat tokens",
        "Check that DockWarden can reach the Docker engine, each watched image's registry "
        "(with the credentials found), write its database, and use the configured chats.",
    )
    notify = command(
        "notify", "send a test alert through every configured channel",
        "Send a test alert through every configured channel and name those that failed.",
    )
    notify.add_argument("--test", action="store_true",
                        help="send the test alert; exit 1 when a channel failed")
    return parser


def configure_logging(level: str, verbosity: int) -> None:
    """Log to stderr (stdout is the command's own): -v our debug, -vv everyone's."""
    root_level = logging.DEBUG if verbosity >= 2 else getattr(logging, level, logging.INFO)
    logging.basicConfig(
        level=root_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    ours = logging.DEBUG if verbosity >= 1 else logging.NOTSET
    for name in ("bot", "adapters"):
        logging.getLogger(name).setLevel(ours)
    # httpx logs every request URL at INFO; token endpoints may carry credentials in queries.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dockwarden` console script."""
    args = build_parser().parse_args(argv)
    verbosity = args.verbose + getattr(args, "verbose_after", 0)
    env_file = getattr(args, "env_file_after", None) or args.env_file
    try:
        settings = load_settings(env_file)
    except ConfigError as exc:
        return _fail(args, "config", str(exc), EXIT_CONFIG)
    configure_logging(settings.log_level, verbosity)
    try:
        return COMMANDS[args.command](settings, args)
    except EngineUnavailable as exc:
        return _fail(args, "engine_unavailable", str(exc), EXIT_ENGINE)
    except ContainerNotFound as exc:
        return _fail(args, "container_not_found",
                     f"no running container or service named {exc.name!r}", EXIT_CONFIG)
    except ConfigError as exc:
        return _fail(args, "config", str(exc), EXIT_CONFIG)
    except DockWardenError as exc:
        return _fail(args, "failed", str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return 130


def _fail(args: argparse.Namespace, kind: str, message: str, status: int) -> int:
    """Say why on stderr (and, with --json, as a JSON error object on stdout)."""
    if getattr(args, "json", False):
        import json

        print(json.dumps(error_document(kind, message)))
    print(f"dockwarden: {message}", file=sys.stderr)
    return status
