"""The console adapter: alerts to stdout, and commands from stdin when it is a terminal.

The default when no chat token is set, so `dockwarden run` does something useful on a fresh
machine. Whoever types at the terminal is the machine's own operator, so commands carry the
`console` platform, which the core treats as an admin.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TextIO

from adapters.common import ask
from bot.chat.alert_texts import render_text
from bot.chat.catalogue import COMMANDS, usage
from bot.chat.messages import Alert, Command, Dispatch, Reply, Sender
from bot.entrypoints.report import pass_line
from bot.usecases.alerting import PassSummary

log = logging.getLogger(__name__)

CONSOLE_SENDER = Sender(platform="console", user_id=0, display="console", in_alert_place=True)


def parse_line(line: str) -> Command | None:
    """`/approve abc123` or `approve abc123` -> Command; None for a blank line."""
    words = line.strip().split()
    if not words:
        return None
    return Command(name=words[0].lstrip("/").lower(), args=tuple(words[1:]), sender=CONSOLE_SENDER)


def help_line() -> str:
    """What the console shows when it starts reading: every command and how it is typed."""
    return "Commands: " + ", ".join(usage(spec) for spec in COMMANDS)


def render_reply(reply: Reply) -> str:
    """Plain text of a reply, with its buttons shown as the commands they stand for."""
    lines = [reply.text]
    if reply.actions:
        lines.append("  ".join(f"[{a.text}: /{a.verb} {a.target}]" for a in reply.actions))
    return "\n".join(lines)


class ConsoleAdapter:
    """Prints alerts to stdout; reads commands from stdin lines when stdin is a terminal."""

    name = "console"

    def __init__(
        self,
        *,
        out: TextIO | None = None,
        stdin: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self._out = out
        self._stdin = stdin if stdin is not None else sys.stdin
        self._interactive = interactive
        self._dispatch: Dispatch | None = None
        self._fd: int | None = None
        self._buffer = b""
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def out(self) -> TextIO:
        """Where alerts and replies go (stdout unless told otherwise)."""
        return self._out if self._out is not None else sys.stdout

    async def start(self, dispatch: Dispatch) -> None:
        """Begin reading commands from a terminal stdin (if there is one)."""
        self._dispatch = dispatch
        interactive = self._interactive
        if interactive is None:
            interactive = self._stdin.isatty()
        if not interactive:
            return
        # A reader callback rather than a thread blocked in readline(), so that stop()
        # returns at once instead of waiting for the operator to press Enter.
        self._fd = self._stdin.fileno()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        self._print(help_line())

    async def stop(self) -> None:
        """Stop reading; let commands under way finish briefly."""
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    async def notify(self, alert: Alert) -> None:
        """Print one alert."""
        self._print(f"--- {alert.kind.value} ---\n{render_text(alert)}")

    async def pass_finished(self, summary: PassSummary) -> None:
        """One line after each full pass, so a quiet console still shows that passes run."""
        self._print(f"check pass: {pass_line(summary.report)}")

    async def handle_line(self, line: str) -> Reply | None:
        """Dispatch one typed line and print the reply."""
        command = parse_line(line)
        if command is None:
            return None
        reply = await ask(self._dispatch, command)
        self._print(render_reply(reply))
        return reply

    def _readable(self) -> None:
        assert self._fd is not None
        chunk = os.read(self._fd, 4096)
        if not chunk:  # end of input: stop reading, keep printing alerts
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            task = asyncio.create_task(self._run_line(raw.decode(errors="replace")))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_line(self, line: str) -> None:
        try:
            await self.handle_line(line)
        except Exception:
            log.exception("console command %r failed", line.strip())

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)
