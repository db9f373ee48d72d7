"""Bounds on what strangers can make the bot do: refusals per sender, passes per cool-down.

A refused sender is answered, but only the first refusal of each window is logged and kept in
the history (with how many were left out before it), and past a few answers a window's further
refusals are not even answered: 2000 refused commands in a second cost one history row and one
log line, and do not use up the bot's own rate limit with the chat platform.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    """What to do with one refusal."""

    RECORD = "record"  # log it, keep it in the history, answer it
    ANSWER = "answer"  # only answer it
    DROP = "drop"  # not even an answer


@dataclass
class _Window:
    started: float
    seen: int = 0


@dataclass
class SenderLimiter:
    """Per-sender windows: one recorded refusal per `window` seconds, `answers` answered."""

    window: float = 60.0
    answers: int = 5
    max_senders: int = 10_000  # a crowd of strangers cannot grow this without bound either
    clock: Callable[[], float] = time.monotonic
    _windows: OrderedDict[Hashable, _Window] = field(default_factory=OrderedDict, init=False)
    _left_out: dict[Hashable, int] = field(default_factory=dict, init=False)

    def admit(self, sender: Hashable) -> tuple[Verdict, int]:
        """The verdict for one more refusal of `sender`, and how many went unrecorded before."""
        now = self.clock()
        current = self._windows.get(sender)
        if current is None or now - current.started >= self.window:
            current = _Window(started=now)
            self._windows[sender] = current
        self._windows.move_to_end(sender)
        while len(self._windows) > self.max_senders:
            oldest, _ = self._windows.popitem(last=False)
            self._left_out.pop(oldest, None)
        current.seen += 1
        if current.seen == 1:
            return Verdict.RECORD, self._left_out.pop(sender, 0)
        self._left_out[sender] = self._left_out.get(sender, 0) + 1
        return (Verdict.ANSWER if current.seen <= self.answers else Verdict.DROP), 0


@dataclass
class Cooldown:
    """At most one start per `seconds`; `wait()` says how long until the next is allowed."""

    seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, init=False)

    def wait(self) -> float:
        """Seconds left before another start is allowed (0 when it is)."""
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.seconds - self.clock())

    def started(self) -> None:
        """Note a start now."""
        self._last = self.clock()
