"""What the one-shot commands that change a container (`update`, `rollback`) share.

Each opens the engine and the store for one run, settles updates a dead process left half-done
before it touches anything, works through an updater, and prints its outcome (or that the
person at the terminal said no) as text or as the JSON of the command-line contract.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Protocol, TypeVar

from bot.config.settings import Settings

if TYPE_CHECKING:
    from bot.store.db import Store
    from bot.update.hosts import HostUpdaters

T = TypeVar("T")


class Outcome(Protocol):
    """A command's result as `update` and `rollback` print it."""

    @property
    def container(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def outcome(self) -> Enum: ...

    def as_json(self) -> dict[str, object]: ...


def run_with_updater(
    settings: Settings,
    work: Callable[[HostUpdaters, Store], Awaitable[T]],
    *,
    after_step: Callable[[str], None] | None = None,
) -> T:
    """Run `work` with the hosts' updaters, interrupted updates settled first."""
    from bot.entrypoints.bootstrap import (
        build_engines,
        build_registry,
        build_store,
        build_updaters,
        hosts_insecure_registries,
    )

    engines = build_engines(settings)
    store = build_store(settings)

    async def main() -> T:
        insecure = await hosts_insecure_registries(engines)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            updater = build_updaters(settings, engines, registry, store, after_step=after_step)
            for name in await updater.reconcile():
                print(f"dockwarden: settled an interrupted update of {name}", file=sys.stderr)
            return await work(updater, store)

    try:
        return asyncio.run(main())
    finally:
        store.close()
        for engine in engines.values():
            engine.close()


def error_document(kind: str, message: str) -> dict[str, object]:
    """What `--json` prints on stdout when the command could not do its work."""
    return {"error": {"kind": kind, "message": message}}


def print_aborted(what: str, *, as_json: bool) -> None:
    """Say that the person at the terminal said no, and nothing changed."""
    message = f"{what} aborted; nothing was changed"
    if as_json:
        print(json.dumps(error_document("aborted", message)))
    print(f"dockwarden: {message}", file=sys.stderr)


def print_outcome(result: Outcome, *, as_json: bool) -> None:
    """The result on stdout: its JSON document, or one line."""
    if as_json:
        print(json.dumps(result.as_json()))
    else:
        print(f"{result.container}: {result.outcome.value}: {result.message}")
