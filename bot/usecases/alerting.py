"""Alerts: what a check pass or an update tells people, said once, rendered as neutral text.

Dedup lives in the store (`alert_keys`), so it survives restarts:
- `update|<container>|<digest>`: an update alert was said for that new remote digest;
- `problem|<registry>|<kind>`: a registry problem was said; when a later pass reaches that
  registry without any problem the key is dropped and one `recovered` alert is said.

Grouping: each update gets its own alert (its own update id, buttons and message to edit after a
press), because adapters edit the message of the update that was pressed; a pass finding five
updates sends five short alerts. Registry problems are grouped per (registry, kind) and name the
containers affected.

Rendering here is plain text; adapters escape it for their markup.

Registries and engines choose parts of their error texts (a reason phrase, a JSON `message`, a
challenge's scheme). Those never reach a chat as such: a registry problem is said with the
kind, the status code and the host only, and texts that may quote an engine (a failed pull)
go through `safe_text` (links cut to their host, one line, bounded). The full text stays in the
logs and in `dockwarden check --json`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.chat.messages import Action, Alert, AlertKind, ChatAdapter, Field
from bot.check.image_info import brings_fields, update_brings
from bot.domain.model import (
    OPEN_STATES,
    CheckReport,
    CheckResult,
    CheckStatus,
    Policy,
    UpdateOutcome,
    UpdateResult,
    UpdateState,
    short_digest,
)
from bot.domain.policy import ready_at
from bot.domain.versions import change_level, parse_version
from bot.store.db import PendingUpdate, Store, utcnow
from bot.store.safety import SafetyStore

log = logging.getLogger(__name__)

SNOOZE_BUTTON = "1d"  # what the Snooze button of an update alert snoozes for

PROBLEM_KINDS: dict[str, AlertKind] = {
    "unsupported_challenge": AlertKind.UNSUPPORTED_CHALLENGE,
    "auth_failed": AlertKind.AUTH_FAILED,
    "unreachable": AlertKind.REGISTRY_UNREACHABLE,
    "rate_limited": AlertKind.RATE_LIMITED,
    # No kind of their own among the alert kinds; said under the nearest one, with the real
    # problem kept in Alert.extra["problem"] and in the title.
    "not_found": AlertKind.REGISTRY_UNREACHABLE,
    "bad_response": AlertKind.REGISTRY_UNREACHABLE,
}

ADVICE: dict[str, str] = {
    "unsupported_challenge": (
        "DockWarden speaks Basic and Bearer token auth only. If the registry can offer one of "
        "them, enable it there; otherwise opt these containers out with the label "
        "dockwarden.enable=false. The other registries are still checked."
    ),
    "auth_failed": (
        "Check the credentials Docker keeps for this registry (`docker login <registry>` as "
        "the user DockWarden runs as, or DOCKER_CONFIG)."
    ),
    "unreachable": (
        "Check DNS, network and TLS to the registry; a plain-HTTP registry must be listed in "
        "DOCKWARDEN_INSECURE_REGISTRIES."
    ),
    "rate_limited": (
        "The registry keeps answering 429. Logging in (`docker login`) usually raises the "
        "limit; checks resume on their own."
    ),
    "not_found": "The repository or tag is not in the registry any more; check the image name.",
    "bad_response": "The registry answered something DockWarden cannot read; see the logs.",
    "bad_rule": (
        "Fix the container's dockwarden.semver or dockwarden.tags.include/exclude label (a "
        "regular expression matching whole tag names); its digest is not checked meanwhile."
    ),
}

PROBLEM_TITLES: dict[str, str] = {
    "unsupported_challenge": "Unsupported auth challenge",
    "auth_failed": "Registry authentication failed",
    "unreachable": "Registry unreachable",
    "rate_limited": "Registry rate limit",
    "not_found": "Image not found in registry",
    "bad_response": "Registry answered garbage",
    "bad_rule": "Bad tag rule label",
}


SAFE_LIMIT = 300  # characters of an engine's or registry's own words shown in chat

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'()\[\]]*")
_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_SCHEME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}")


def _host_of(match: re.Match[str]) -> str:
    try:
        host = urlsplit(match.group()).hostname
    except ValueError:
        host = None
    return f"<link to {host}>" if host else "<link>"


def safe_text(text: str, limit: int = SAFE_LIMIT) -> str:
    """Text that may quote a registry or an engine, fit for chat: links cut to their host,
    markdown link syntax broken, one line, at most `limit` characters."""
    text = _URL.sub(_host_of, text).replace("](", "] (")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_scheme(scheme: str | None) -> str | None:
    """An auth scheme as a registry named it, or None when it is not a plain token."""
    return scheme if scheme and _SCHEME.fullmatch(scheme) else None


def status_code(message: str) -> str | None:
    """The HTTP status code an error text names (`HTTP 401`), if any."""
    found = _STATUS.search(message)
    return found.group(1) if found else None


def registry_of(image: str) -> str:
    """The registry host of a normalised reference (`docker.io/library/nginx:1` -> docker.io)."""
    return image.split("/", 1)[0]


@dataclass(frozen=True)
class PassSummary:
    """What one check pass found and said."""

    report: CheckReport
    alerts: tuple[Alert, ...] = ()
    auto: tuple[PendingUpdate, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many results had each status."""
        counts = {status.value: 0 for status in CheckStatus}
        for result in self.report.results:
            counts[result.status.value] += 1
        return counts


# -- building alerts -----------------------------------------------------------------------------


def update_alert(update: PendingUpdate, *, with_actions: bool) -> Alert:
    """The update_available alert of one pending update."""
    actions: tuple[Action, ...] = ()
    if with_actions:
        actions = (
            Action("approve", update.id, "Approve"),
            Action("ignore", update.id, "Ignore"),
            Action("snooze", update.id, f"Snooze {SNOOZE_BUTTON}"),
        )
    how = (
        f"Approve with /approve {update.id}."
        if with_actions
        else f"Policy {update.policy}: to update, send /pull {update.container}."
    )
    newer = newer_tag_line(update)
    return Alert(
        kind=AlertKind.UPDATE_AVAILABLE,
        title=f"Update available: {update.container}",
        text=f"{newer or update.image + ' has a newer digest.'} {how}",
        fields=(
            Field("Container", update.container),
            Field("Image", update.image),
            Field("Registry", registry_of(update.image)),
            Field("Running", short_digest(update.old_digest)),
            Field("New", short_digest(update.remote_digest)),
            *((Field("New tag", update.new_tag),) if update.new_tag else ()),
            *brings_fields(update),
            Field("Policy", update.policy),
            Field("Update id", update.id),
        ),
        actions=actions,
        update_id=update.id,
        container=update.container,
        extra={"digest": update.remote_digest, "image": update.image},
    )


def newer_tag_line(update: PendingUpdate) -> str | None:
    """"nginx 1.27.3 → 1.28.0 available (minor)" for a newer tag; None for a new digest."""
    if not update.new_tag:
        return None
    name, _, tag = update.image.rpartition(":")
    old, new = parse_version(tag), parse_version(update.new_tag)
    level = f" ({change_level(old, new)})" if old is not None and new is not None else ""
    short = name.rsplit("/", 1)[-1]
    return f"{short} {tag} → {update.new_tag} available{level}."


def problem_alert(registry: str, kind: str, results: Sequence[CheckResult]) -> Alert:
    """One alert for one problem kind at one registry, naming the containers it hides."""
    first = results[0].error
    raw_scheme = first.scheme if first else None
    scheme = safe_scheme(raw_scheme)
    status = status_code(first.message) if first else None
    containers = ", ".join(sorted({r.container for r in results}))
    # Kind, status code and host only: the registry's own words stay in the logs.
    lines = [f"{PROBLEM_TITLES.get(kind, kind)} at {registry}"
             + (f" (HTTP {status})" if status else "") + "."]
    if scheme:
        lines.append(f"The registry asks for the {scheme!r} auth scheme.")
    elif raw_scheme:
        lines.append("The registry asks for an auth scheme with an unreadable name.")
    lines.append(f"Not checked: {containers}.")
    lines.append(f"What to do: {ADVICE.get(kind, 'see the logs.')}")
    fields = [Field("Registry", registry), Field("Problem", kind)]
    if status:
        fields.append(Field("Status", f"HTTP {status}"))
    if scheme:
        fields.append(Field("Scheme", scheme))
    fields.append(Field("Containers", containers))
    extra = {"registry": registry, "problem": kind}
    if scheme:
        extra["scheme"] = scheme
    return Alert(
        kind=PROBLEM_KINDS.get(kind, AlertKind.REGISTRY_UNREACHABLE),
        title=f"{PROBLEM_TITLES.get(kind, kind)}: {registry}",
        text="\n".join(lines),
        fields=tuple(fields),
        extra=extra,
    )


def recovered_alert(registry: str, kinds: Sequence[str]) -> Alert:
    """Said once when a registry that had problems answers normally again."""
    cleared = ", ".join(kinds)
    return Alert(
        kind=AlertKind.RECOVERED,
        title=f"Registry recovered: {registry}",
        text=f"{registry} answers normally again (was: {cleared}).",
        fields=(Field("Registry", registry), Field("Cleared", cleared)),
        extra={"registry": registry, "problem": cleared},
    )


def engine_alert(message: str) -> Alert:
    """Said once when a pass cannot list the engine's containers (engine down or failing)."""
    return Alert(
        kind=AlertKind.ENGINE_UNREACHABLE,
        title="Docker engine problem: nothing was checked",
        text=(
            f"{safe_text(message)}\nNo container is checked until it answers; DockWarden "
            "keeps trying on schedule and says so once it does."
        ),
        fields=(Field("Problem", "engine_unreachable"),),
        extra={"problem": "engine_unreachable"},
    )


def engine_recovered_alert() -> Alert:
    """Said once when the Docker engine answers again after an engine_unreachable alert."""
    return Alert(
        kind=AlertKind.RECOVERED,
        title="Docker engine recovered",
        text="The Docker engine answers again; checks are back on schedule.",
        fields=(Field("Cleared", "engine_unreachable"),),
        extra={"problem": "engine_unreachable"},
    )


def result_alert(result: UpdateResult, *, update_id: str | None, actor: str | None) -> Alert:
    """update_succeeded / update_failed for what an update did."""
    ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
    who = f" (by {actor})" if actor else ""
    if result.outcome is UpdateOutcome.UPDATED:
        title = f"Updated: {result.container}"
        text = f"{result.container} now runs {short_digest(result.new_digest)}{who}."
    elif result.outcome is UpdateOutcome.UP_TO_DATE:
        title = f"Already up to date: {result.container}"
        text = f"{result.container} already runs {short_digest(result.new_digest)}{who}."
    elif result.outcome is UpdateOutcome.ROLLED_BACK:
        title = f"Update rolled back: {result.container}"
        text = (
            f"The new container did not come up; {result.container} is back on "
            f"{short_digest(result.old_digest)}{who}. {safe_text(result.message)}"
        )
    else:
        title = f"Update failed: {result.container}"
        text = f"{safe_text(result.message)}{who}"
    fields = [
        Field("Container", result.container),
        Field("Outcome", result.outcome.value),
        Field("Old", short_digest(result.old_digest)),
        Field("New", short_digest(result.new_digest)),
    ]
    if actor:
        fields.append(Field("By", actor))
    # Back to the previous image in one tap (admins only, like Approve): bot/update/rollback.py.
    actions = ((Action("rollback", result.container, "Roll back"),)
               if result.outcome is UpdateOutcome.UPDATED else ())
    return Alert(
        kind=AlertKind.UPDATE_SUCCEEDED if ok else AlertKind.UPDATE_FAILED,
        title=title,
        text=text.strip(),
        fields=tuple(fields),
        actions=actions,
        update_id=update_id,
        container=result.container,
        extra={"outcome": result.outcome.value, "message": result.message},
    )


# -- dedup ---------------------------------------------------------------------------------------


_ENGINE_KEY = "engine|unreachable"


class Alerter:
    """Turns check reports into alerts worth saying, using the store to remember what was said."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def observe(self, report: CheckReport, *, now: datetime | None = None) -> PassSummary:
        """Record what the pass saw; return the new alerts and the updates to apply (auto)."""
        now = now or utcnow()
        alerts: list[Alert] = []
        auto: list[PendingUpdate] = []
        problems: dict[tuple[str, str], list[CheckResult]] = {}
        healthy: set[str] = set()
        with self.store.transaction():  # one commit for the whole pass
            if self.store.was_said(_ENGINE_KEY):  # a report means the engine answered
                self.store.unsay(_ENGINE_KEY)
                alerts.append(engine_recovered_alert())
            self._observe(report, now, alerts, auto, problems, healthy)
            alerts.extend(self._problems(problems, healthy))
        return PassSummary(report=report, alerts=tuple(alerts), auto=tuple(auto))

    def engine_unreachable(self, message: str) -> list[Alert]:
        """A pass could not reach the engine: one alert, the first time only."""
        with self.store.transaction():
            if self.store.was_said(_ENGINE_KEY):
                return []
            self.store.mark_said(_ENGINE_KEY)
        return [engine_alert(message)]

    def _observe(
        self,
        report: CheckReport,
        now: datetime,
        alerts: list[Alert],
        auto: list[PendingUpdate],
        problems: dict[tuple[str, str], list[CheckResult]],
        healthy: set[str],
    ) -> None:
        for result in report.results:
            if result.status is CheckStatus.ERROR and result.error is not None:
                registry = result.error.registry or registry_of(result.image)
                problems.setdefault((registry, result.error.kind), []).append(result)
            elif result.status in (CheckStatus.UP_TO_DATE, CheckStatus.UPDATE_AVAILABLE):
                healthy.add(registry_of(result.image))
            if result.status is CheckStatus.UPDATE_AVAILABLE and result.remote_digest:
                self._update(result, now, alerts, auto)
            elif result.status is CheckStatus.UP_TO_DATE and result.remote_digest:
                self._settle(result)

    def _update(
        self, result: CheckResult, now: datetime, alerts: list[Alert], auto: list[PendingUpdate]
    ) -> None:
        digest = result.remote_digest or ""
        safety = SafetyStore(self.store)
        if now < ready_at(safety.first_seen(result.container, digest, now), result.min_age):
            return  # younger than its minimum age: proposed later (a pulled release never is)
        policy = result.policy or Policy.APPROVE
        update, _ = self.store.add_update(
            result.container, result.image, result.local_digest, digest, policy,
            new_tag=result.new_tag,
        )
        self.store.set_seen_digest(result.container, result.image, digest)
        key = f"update|{result.container}|{digest}"
        if update.state is not UpdateState.PENDING or self.store.was_said(key):
            return
        if self.store.is_ignored(result.container, digest):
            return
        if self.store.snoozed_until(result.container, now) is not None:
            return  # said (or applied, for auto) once the snooze ends, if still pending then
        rolled_back = safety.is_blocked(result.container, digest)
        if update.policy is Policy.AUTO and not rolled_back:
            # Said by the update's own succeeded/failed alert; attempted once per digest.
            self.store.mark_said(key, update.id)
            auto.append(update)
            return
        self.store.mark_said(key, update.id)
        update = update_brings(self.store, update)  # what the new image says, said once
        # A digest rolled back from is offered for approval, whatever `auto` says.
        alert = update_alert(update, with_actions=update.policy in (Policy.APPROVE, Policy.AUTO))
        if rolled_back:
            alert = replace(alert, text=f"{alert.text} {result.container} was rolled back from "
                            "this digest once, so it is not applied automatically.")
        alerts.append(alert)

    def _settle(self, result: CheckResult) -> None:
        """An up-to-date container closes its open update rows (applied elsewhere or obsolete)."""
        digest = result.remote_digest or ""
        self.store.set_seen_digest(result.container, result.image, digest)
        latest = self.store.latest_update(result.container)
        if latest is None or latest.state not in OPEN_STATES:
            return
        state = UpdateState.APPLIED if latest.remote_digest == digest else UpdateState.SUPERSEDED
        self.store.set_update_state(
            latest.id, state, expect=(UpdateState.PENDING, UpdateState.FAILED),
            detail="seen up to date",
        )

    def _problems(
        self, problems: dict[tuple[str, str], list[CheckResult]], healthy: set[str]
    ) -> list[Alert]:
        alerts: list[Alert] = []
        for (registry, kind), results in sorted(problems.items()):
            key = f"problem|{registry}|{kind}"
            if not self.store.was_said(key):
                self.store.mark_said(key)
                alerts.append(problem_alert(registry, kind, results))
        troubled = {registry for registry, _ in problems}
        for registry in sorted(healthy - troubled):
            prefix = f"problem|{registry}|"
            cleared = [key[len(prefix):] for key in self.store.said_keys(prefix)]
            if cleared:
                for kind in cleared:
                    self.store.unsay(prefix + kind)
                alerts.append(recovered_alert(registry, cleared))
        return alerts


# -- rendering and delivery -----------------------------------------------------------------------


def render_text(alert: Alert) -> str:
    """Plain text of an alert: title, text, fields, and the commands its buttons stand for."""
    lines = [alert.title, alert.text]
    lines.extend(f"{f.name}: {f.value}" for f in alert.fields)
    if alert.actions:
        lines.append("  ".join(f"[{a.text}: /{a.verb} {a.target}]" for a in alert.actions))
    return "\n".join(line for line in lines if line)


def alert_to_json(alert: Alert) -> str:
    """Serialise an alert for the outbox."""
    data: dict[str, Any] = {
        "kind": alert.kind.value,
        "title": alert.title,
        "text": alert.text,
        "fields": [[f.name, f.value] for f in alert.fields],
        "actions": [[a.verb, a.target, a.label] for a in alert.actions],
        "update_id": alert.update_id,
        "container": alert.container,
        "extra": alert.extra,
    }
    return json.dumps(data)


def alert_from_json(payload: str) -> Alert:
    """The alert an outbox row holds."""
    data = json.loads(payload)
    return Alert(
        kind=AlertKind(data["kind"]),
        title=data["title"],
        text=data["text"],
        fields=tuple(Field(name, value) for name, value in data["fields"]),
        actions=tuple(Action(verb, target, label) for verb, target, label in data["actions"]),
        update_id=data["update_id"],
        container=data["container"],
        extra=dict(data["extra"]),
    )


class AlertSink(Protocol):
    """Where the core sends alerts (the Notifier in the daemon)."""

    async def send(self, alerts: Iterable[Alert]) -> None:
        """Deliver alerts to every alert place."""


@dataclass
class Notifier:
    """Fans each alert out to every adapter; retries; keeps what failed in the store's outbox."""

    adapters: Sequence[ChatAdapter]
    store: Store
    attempts: int = 3
    retry_delay: float = 1.0
    secrets: Sequence[str] = ()  # cut out of error text before it is logged or stored
    delivered: int = field(default=0, init=False)
    _sending: set[int] = field(default_factory=set, init=False, repr=False)

    async def send(self, alerts: Iterable[Alert]) -> None:
        """Deliver the alerts in order to every adapter at once; failures wait in the outbox.

        Each alert is written to the outbox before it is sent and removed once delivered, so
        one that a stop or a crash interrupts is sent at the next pass rather than lost.
        """
        batch = list(alerts)
        if not batch or not self.adapters:
            return
        rows: dict[str, list[int]] = {}
        with self.store.transaction():
            for adapter in self.adapters:
                rows[adapter.name] = [
                    self.store.outbox_add(adapter.name, alert_to_json(a), attempts=0)
                    for a in batch
                ]
        self._sending.update(i for ids in rows.values() for i in ids)
        try:
            await asyncio.gather(
                *(self._send_to(a, batch, rows[a.name]) for a in self.adapters)
            )
        finally:
            self._sending.difference_update(i for ids in rows.values() for i in ids)

    async def _send_to(self, adapter: ChatAdapter, alerts: list[Alert], ids: list[int]) -> None:
        delivered: list[int] = []
        error: str | None = None
        try:
            for alert, row in zip(alerts, ids, strict=True):
                if error is None:
                    error = await self._deliver(adapter, alert)
                    if error is None:
                        delivered.append(row)
                        continue
                # Once an adapter is down, the rest of the batch waits in the outbox (in
                # order) instead of each alert waiting out its own retries.
                self.store.outbox_failed(row, error)
                log.error(
                    "alert %r not delivered to %s (%s); kept to retry at the next pass",
                    alert.title, adapter.name, error,
                )
        finally:
            self.store.outbox_done(*delivered)

    async def flush(self) -> int:
        """Retry the outbox; returns how many alerts are still undelivered."""
        by_name = {adapter.name: adapter for adapter in self.adapters}
        down: set[str] = set()
        left = 0
        for item in self.store.outbox():
            if item.id in self._sending:
                continue  # a send() under way owns it
            adapter = by_name.get(item.adapter)
            if adapter is None or item.adapter in down:
                left += 1  # not configured now, or still down: kept, in order, for later
                continue
            error = await self._deliver(adapter, alert_from_json(item.payload))
            if error is None:
                self.store.outbox_done(item.id)
            else:
                self.store.outbox_failed(item.id, error)
                down.add(item.adapter)
                left += 1
        return left

    async def _deliver(self, adapter: ChatAdapter, alert: Alert) -> str | None:
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            try:
                await adapter.notify(alert)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any adapter failure: retried, then kept
                error = f"{type(exc).__name__}: {exc}"
                for secret in self.secrets:
                    if secret:
                        error = error.replace(secret, "***")
                log.warning(
                    "alert delivery to %s failed (attempt %d/%d): %s",
                    adapter.name, attempt, self.attempts, error,
                )
                if attempt < self.attempts:
                    await asyncio.sleep(self.retry_delay * attempt)
                continue
            self.delivered += 1
            return None
        return error
