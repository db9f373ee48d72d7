"""The words of the chat commands' answers: refusals, usage, views, outcomes (plain text).

Handlers decide what to say; this module says it. Texts that may quote an engine or a registry
go through `safe_text`; adapters escape the rest for their markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.chat.alert_texts import named
from bot.chat.catalogue import CommandSpec, usage
from bot.chat.text_safety import safe_text
from bot.domain.model import CheckStatus, UpdateResult, short_digest
from bot.domain.policy import wait_note
from bot.store.history import HistoryEntry
from bot.store.meta import LastPass
from bot.store.updates import PendingUpdate
from bot.usecases.alerting import PassSummary
from bot.usecases.canary import waits_for_canary

STATUS_PENDING_SHOWN = 5  # pending updates /status lists before pointing at /updates


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the router's own answers ---------------------------------------------------------------------


def unknown_command(name: str) -> str:
    """The answer to a command no one declared (its name cut: strangers choose it)."""
    return f"Unknown command /{cut(name, 32)}. Send /help for the list."


def refusal(spec: CommandSpec) -> str:
    """The answer to someone the command is not for."""
    what = "change anything" if spec.changes_state else "use this bot here"
    return (
        f"Sorry, you are not allowed to {what}: /{spec.name} is for the people on the "
        "allow-list."
    )


def recorded(text: str) -> str:
    """A refusal's answer, when the attempt went into the history."""
    return f"{text} The attempt was recorded."


def usage_error(why: str, spec: CommandSpec) -> str:
    """What was wrong with the arguments, and how the command is typed."""
    return f"{why}\nUsage: {usage(spec)}"


def failed(name: str, why: str) -> str:
    """A command that failed; the text may quote an engine or a registry: only a safe form."""
    return f"/{name} failed: {safe_text(why)}"


def help_line(spec: CommandSpec, *, admin: bool) -> str:
    """One /help line: usage, summary, and whether the command is for admins (and the reader)."""
    mark = ""
    if spec.changes_state:
        mark = " (admins)" if admin else " (admins only; not you)"
    return f"{usage(spec)} — {spec.summary}{mark}"


def one_argument(name: str) -> str:
    """The usage problem of a command that takes one argument."""
    return f"/{name} takes exactly one argument"


# -- read-only views ------------------------------------------------------------------------------


def update_line(update: PendingUpdate, wait_until: datetime | None = None) -> str:
    """One update as /status and /updates list it (with when an auto update waits for)."""
    to_tag = f" (tag {update.new_tag})" if update.new_tag else ""
    compose = f" (compose {update.compose})" if update.compose else ""
    return (
        f"{update.id} {named(update.container, stopped=update.stopped)}{compose} "
        f"{update.image} "
        f"{short_digest(update.old_digest)} -> {short_digest(update.remote_digest)}{to_tag} "
        f"[{update.state}, {update.policy}]"
    ) + wait_note(wait_until, canary=waits_for_canary(update.detail))


def status_text(
    *,
    engine_label: str,
    schedule: str,
    last_pass: LastPass | None,
    next_pass: datetime | None,
    pending: Sequence[PendingUpdate],
    undelivered: int,
) -> str:
    """/status: engine, schedule, the last pass's counts, the next pass, pending updates."""
    lines = [f"Engine: {engine_label}"]
    if schedule:
        lines.append(f"Schedule: {schedule}")
    if last_pass is None:
        lines.append("Last pass: none yet")
    else:
        counts, at = last_pass.counts, last_pass.checked_at.isoformat(timespec="seconds")
        lines.append(
            f"Last pass: {at} — {last_pass.total} containers: "
            f"{counts[CheckStatus.UP_TO_DATE]} up to date, "
            f"{counts[CheckStatus.UPDATE_AVAILABLE]} with updates, "
            f"{counts[CheckStatus.SKIPPED]} skipped, {counts[CheckStatus.ERROR]} errors"
        )
        for host, host_counts in sorted(last_pass.hosts.items()):
            lines.append(
                f"  {host}: {sum(host_counts.values())} containers, "
                f"{host_counts[CheckStatus.UPDATE_AVAILABLE]} with updates, "
                f"{host_counts[CheckStatus.ERROR]} errors"
            )
        for host, message in sorted(last_pass.unreachable.items()):
            lines.append(f"  {host}: not checked, the engine did not answer: {safe_text(message)}")
        for registry, message in sorted(last_pass.rate_limited.items()):
            lines.append(f"Rate limited: {registry}: {safe_text(message)}")
    if next_pass is not None:
        lines.append(f"Next pass: {next_pass.isoformat(timespec='seconds')}")
    lines.append(f"Pending updates: {len(pending)}")
    lines.extend(f"  {update_line(u)}" for u in pending[:STATUS_PENDING_SHOWN])
    if len(pending) > STATUS_PENDING_SHOWN:
        lines.append("  ... /updates lists them all")
    if undelivered:
        lines.append(f"Undelivered alerts waiting for retry: {undelivered}")
    return "\n".join(lines)


def check_cooldown(wait: float) -> str:
    """The answer to a non-admin's /check within the cool-down."""
    return (
        f"A check pass ran moments ago; try again in {wait:.0f}s (or see /status). "
        "Only admins may check more often."
    )


def check_text(summary: PassSummary) -> str:
    """What a /check found: the counts, then each update and each error."""
    counts = summary.counts()
    lines = [
        f"Checked {len(summary.report.results)} containers: {counts['up_to_date']} up to "
        f"date, {counts['update_available']} with updates, {counts['skipped']} skipped, "
        f"{counts['error']} errors; {len(summary.alerts)} new alerts."
    ]
    for result in summary.report.results:
        if result.status is CheckStatus.UPDATE_AVAILABLE:
            name = named(result.container, stopped=result.stopped)
            lines.append(f"  {name}: update {short_digest(result.remote_digest)}")
        elif result.status is CheckStatus.ERROR and result.error:
            lines.append(f"  {result.container}: {result.error.kind} ({result.error.registry})")
    return "\n".join(lines)


def history_line(entry: HistoryEntry) -> str:
    """One history entry: when, what, to which container, how it ended, by whom, why."""
    return (
        f"{entry.at[:19]} {entry.action} {entry.container or '-'}: {entry.outcome}"
        + (f" by {entry.actor}" if entry.actor else "")
        + (f" — {entry.detail}" if entry.detail else "")
    )


# -- outcomes of the commands that change state ----------------------------------------------------


def result_text(result: UpdateResult, update_id: str | None) -> str:
    """How an update ended (the engine's words made safe)."""
    label = f" (update {update_id})" if update_id else ""
    return f"{result.container}: {result.outcome.value}{label}. {safe_text(result.message)}".strip()


def not_started(what: str, why: str) -> str:
    """An update or rollback refused before anything was done: `/pull web not started: ...`."""
    return f"{what} not started: {why}"


def no_update(word: str) -> str:
    """/approve of something that names no update."""
    return f"No update {word!r} (neither an update id nor a container with one)."


def superseded(update: PendingUpdate, newer: PendingUpdate | None) -> str:
    """Why a superseded update cannot be approved (and which one can, when there is one)."""
    if newer is not None:
        return (
            f"Update {update.id} for {update.container} is no longer current: a newer "
            f"digest {short_digest(newer.remote_digest)} arrived as update {newer.id}. "
            f"Approve that one instead."
        )
    return (
        f"Update {update.id} for {update.container} is no longer current "
        f"(the container moved on); nothing was done."
    )


def already_applied(update: PendingUpdate) -> str:
    """/approve of an update the container already runs."""
    return f"Update {update.id} for {update.container} was already applied."


def being_applied(update: PendingUpdate) -> str:
    """/approve of an update under way."""
    return f"Update {update.id} for {update.container} is already being applied."


def nothing_to_ignore(word: str) -> str:
    """/ignore of something with no pending update."""
    return f"Nothing pending to ignore for {word!r}."


def ignored(update: PendingUpdate) -> str:
    """/ignore done."""
    return (
        f"Ignored update {update.id} of {update.container} "
        f"({short_digest(update.remote_digest)}); a newer digest will be alerted again."
    )


def snoozed(container: str, until: datetime) -> str:
    """/snooze done."""
    return f"Snoozed {container} until {until.strftime('%Y-%m-%d %H:%M UTC')}."


def rollback_text(container: str, outcome: str, message: str) -> str:
    """How a rollback ended (the engine's words made safe)."""
    return f"{container}: {outcome}. {safe_text(message)}"
