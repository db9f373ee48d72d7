"""Which containers and services this process is changing right now: one change at a time each.

An update and a rollback claim the name they were asked for, then the container's id and name;
a second change of any of them is refused with UpdateInProgress until the first one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.errors import UpdateInProgress


class Claims:
    """Names and ids of the containers and services being changed by this process."""

    def __init__(self) -> None:
        self._busy: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._busy

    def _claim(self, key: str) -> None:
        # Checked and claimed with no await in between: atomic on the one event loop. An id
        # prefix of 12 or more characters names the same container as the whole id.
        if key in self._busy or any(len(key) >= 12 and b.startswith(key) for b in self._busy):
            raise UpdateInProgress(f"an update of {key} is already running")
        self._busy.add(key)

    @contextmanager
    def hold(self, name: str) -> Iterator[Callable[[str], None]]:
        """Claim `name` for the block (UpdateInProgress when taken); yields `add(key)` to
        claim more keys for the same change (the container's id, its name)."""
        held: set[str] = set()

        def add(key: str) -> None:
            if key not in held:
                self._claim(key)
                held.add(key)

        try:
            add(name)
            yield add
        finally:
            self._busy.difference_update(held)

    @contextmanager
    def settling(self, name: str) -> Iterator[None]:
        """Mark `name` busy while an interrupted change of it is settled (no check: the caller
        looked with `in` first)."""
        self._busy.add(name)
        try:
            yield
        finally:
            self._busy.discard(name)
