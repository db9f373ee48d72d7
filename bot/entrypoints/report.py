"""Check reports as people read them in a terminal: an aligned table, a one-line outcome of a
pass, and a progress line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import TextIO

from bot.domain.model import CheckReport, CheckResult, CheckStatus, SkipReason, short_digest
from bot.domain.reference import parse_reference
from bot.errors import InvalidReference

HEADERS = ("CONTAINER", "IMAGE", "STATUS", "DETAIL")

_SKIP_TEXT = {
    SkipReason.PINNED_DIGEST: "pinned by digest",
    SkipReason.LOCAL_IMAGE: "local image, nothing to compare in a registry",
    SkipReason.DISABLED: "disabled by label",
}


def familiar_image(image: str) -> str:
    """The short form Docker shows (`nginx:latest`), or the text itself when it is no reference."""
    try:
        return parse_reference(image).familiar
    except InvalidReference:
        return image


def detail(result: CheckResult) -> str:
    """The DETAIL column for one result."""
    if result.status is CheckStatus.UP_TO_DATE:
        return short_digest(result.remote_digest)
    if result.status is CheckStatus.UPDATE_AVAILABLE:
        digests = f"{short_digest(result.local_digest)} -> {short_digest(result.remote_digest)}"
        return f"tag {result.new_tag}: {digests}" if result.new_tag else digests
    if result.status is CheckStatus.SKIPPED and result.reason is not None:
        return _SKIP_TEXT[result.reason]
    if result.error is not None:
        return f"{result.error.kind}: {result.error.message}"
    return ""


def render_table(report: CheckReport) -> str:
    """The report as aligned columns plus a one-line summary."""
    if not report.results:
        return "no running containers to check\n"
    rows = [
        (r.container, familiar_image(r.image), r.status.value.replace("_", " "), detail(r))
        for r in report.results
    ]
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(3)]
    lines = []
    for row in [HEADERS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    lines.append("")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def summary(report: CheckReport) -> str:
    """`4 checked: 2 up to date, 1 update available, 1 skipped`."""
    counts = Counter(r.status for r in report.results)
    parts = [
        f"{counts[status]} {status.value.replace('_', ' ')}"
        for status in CheckStatus
        if counts[status]
    ]
    return f"{len(report.results)} checked: " + ", ".join(parts)


def pass_line(report: CheckReport) -> str:
    """What a finished pass comes to: `all 12 up to date`, or the summary when not."""
    if not report.results:
        return "no running containers to check"
    counts = Counter(r.status for r in report.results)
    checked = len(report.results) - counts[CheckStatus.SKIPPED]
    if checked and counts[CheckStatus.UP_TO_DATE] == checked:
        skipped = counts[CheckStatus.SKIPPED]
        return f"all {checked} up to date" + (f" ({skipped} skipped)" if skipped else "")
    return summary(report)


class Status:
    """The progress line's label; the work under way changes it as it moves on."""

    def __init__(self, label: str) -> None:
        self.label = label


@contextlib.asynccontextmanager
async def progress(
    stream: TextIO, label: str | Status, *, after: float = 1.0
) -> AsyncIterator[Status]:
    """A spinner with the elapsed time on `stream`, only on a terminal and only after `after` s.

    Setting `.label` on the Status it yields (or was given) changes the text from the next frame.
    """
    status = label if isinstance(label, Status) else Status(label)
    if not stream.isatty():
        yield status
        return
    task = asyncio.create_task(_spin(stream, status, after))
    try:
        yield status
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _spin(stream: TextIO, status: Status, after: float) -> None:
    started = time.monotonic()
    await asyncio.sleep(after)
    frames = "|/-\\"
    shown = False
    try:
        for tick in range(1_000_000):
            elapsed = time.monotonic() - started
            stream.write(f"\r\033[K{frames[tick % len(frames)]} {status.label} {elapsed:.1f}s")
            stream.flush()
            shown = True
            await asyncio.sleep(0.1)
    finally:
        if shown:
            stream.write("\r\033[K")  # clear the line so the table starts clean
            stream.flush()


def confirm(question: str, *, without_terminal: str) -> bool:
    """Ask yes/no on the terminal (default no); without one, say why nothing is done."""
    if not sys.stdin.isatty():
        print(f"dockwarden: {without_terminal}", file=sys.stderr)
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")
