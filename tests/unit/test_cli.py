"""The command line's surface: options, help, logging levels; the alert sink of `update`."""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import __version__
from bot.chat.messages import Alert, AlertKind
from bot.config.settings import Settings
from bot.entrypoints.bootstrap import ADAPTERS
from bot.entrypoints.cli import (
    EXIT_CONFIG,
    EXIT_ENGINE,
    EXIT_FAILED,
    build_parser,
    configure_logging,
)
from bot.entrypoints.cli_alerts import CommandAlerts
from bot.store.db import Store


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"dockwarden {__version__}"


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [
        (["check"], 0),
        (["-v", "check"], 1),
        (["check", "-v"], 1),
        (["update", "web", "-vv"], 2),
        (["-v", "doctor", "-v"], 2),
    ],
)
def test_verbose_is_accepted_before_and_after_the_subcommand(
    argv: list[str], verbosity: int
) -> None:
    args = build_parser().parse_args(argv)
    assert args.verbose + getattr(args, "verbose_after", 0) == verbosity


def test_env_file_is_accepted_after_the_subcommand() -> None:
    args = build_parser().parse_args(["check", "--env-file", "/etc/dockwarden.env"])
    assert args.env_file_after == "/etc/dockwarden.env"


def test_every_subcommand_has_a_description_and_the_exit_codes_in_its_help() -> None:
    parser = build_parser()
    top = parser.format_help()
    for code in (EXIT_FAILED, EXIT_CONFIG, EXIT_ENGINE):
        assert f"\n  {code}  " in top
    for name, sub in _subparsers(parser).items():
        assert sub.description, name
        assert "exit status:" in sub.format_help(), name
    update = _subparsers(parser)["update"]
    (positional,) = [a for a in update._actions if a.dest == "name"]
    assert positional.help


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ours = {name: logging.getLogger(name).level for name in ("bot", "adapters")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in ours.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize(
    ("verbosity", "ours", "theirs"),
    [(0, False, False), (1, True, False), (2, True, True)],
)
def test_v_shows_our_debug_and_vv_everyones(verbosity: int, ours: bool, theirs: bool) -> None:
    configure_logging("INFO", verbosity)
    assert logging.getLogger("bot.check.checker").isEnabledFor(logging.DEBUG) is ours
    assert logging.getLogger("adapters.console").isEnabledFor(logging.DEBUG) is ours
    assert logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG) is theirs
    assert logging.getLogger("docker.utils.config").isEnabledFor(logging.INFO)
    # Request URLs may carry credentials: never logged, whatever the level.
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_outbox_names_are_the_adapters_own_names() -> None:
    assert len({spec.setting for spec in ADAPTERS}) == len({spec.name for spec in ADAPTERS}) == 4
    for spec in ADAPTERS:
        adapter = getattr(importlib.import_module(spec.module), spec.cls)
        assert adapter.name == spec.name


ALERT = Alert(kind=AlertKind.UPDATE_SUCCEEDED, title="web updated", text="web runs the new image")


async def test_update_alert_is_queued_for_each_configured_chat(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, TELEGRAM_BOT_TOKEN="1:x", DOCKWARDEN_NOTIFY_URLS="json://localhost/"
    )
    store = Store(tmp_path / "state.db")
    said = io.StringIO()
    try:
        await CommandAlerts(settings, store, said).send([ALERT])
        queued = store.outbox()
    finally:
        store.close()
    assert sorted(item.adapter for item in queued) == ["apprise", "telegram"]
    assert all(json.loads(item.payload)["kind"] == "update_succeeded" for item in queued)
    assert "queued for telegram, apprise" in said.getvalue()


async def test_update_alert_is_printed_when_no_chat_is_configured(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    said = io.StringIO()
    try:
        await CommandAlerts(Settings(_env_file=None), store, said).send(  # type: ignore[call-arg]
            [ALERT]
        )
        assert store.outbox() == []
    finally:
        store.close()
    assert "--- update_succeeded ---" in said.getvalue()
    assert "web runs the new image" in said.getvalue()
