"""Every alert's words: what a pass, an update or a registry problem tells people.

Each builder returns a neutral `Alert` (plain text, fields, buttons); adapters escape it for their
markup. A registry problem is said by the one table `PROBLEMS`: the problem's kind (a registry
error's `kind`, as `dockwarden check --json` names it) gives its alert kind, title and advice.
Registry problems are said with the kind, the status code and the host only; texts that may
quote an engine (a failed pull) go through `safe_text` (bot/chat/text_safety.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.chat.messages import Action, Alert, AlertKind, Field
from bot.chat.text_safety import safe_scheme, safe_text, status_code
from bot.check.image_info import brings_fields
from bot.domain.model import CheckResult, UpdateOutcome, UpdateResult, short_digest
from bot.domain.reference import registry_of
from bot.domain.versions import change_level, parse_version
from bot.errors import (
    AuthFailed,
    BadResponse,
    BadTagRule,
    ManifestNotFound,
    RateLimited,
    RegistryUnreachable,
    UnsupportedChallenge,
)
from bot.store.updates import PendingUpdate
from bot.update.rollback import RollbackOutcome, RollbackResult

SNOOZE_BUTTON = "1d"  # what the Snooze button of an update alert snoozes for


@dataclass(frozen=True)
class Problem:
    """How one kind of registry problem is said: its alert kind, title and advice."""

    alert: AlertKind
    title: str
    advice: str


PROBLEMS: dict[str, Problem] = {
    UnsupportedChallenge.kind: Problem(
        AlertKind.UNSUPPORTED_CHALLENGE,
        "Unsupported auth challenge",
        "DockWarden speaks Basic and Bearer token auth only. If the registry can offer one of "
        "them, enable it there; otherwise opt these containers out with the label "
        "dockwarden.enable=false. The other registries are still checked.",
    ),
    AuthFailed.kind: Problem(
        AlertKind.AUTH_FAILED,
        "Registry authentication failed",
        "Check the credentials Docker keeps for this registry (`docker login <registry>` as "
        "the user DockWarden runs as, or DOCKER_CONFIG).",
    ),
    RegistryUnreachable.kind: Problem(
        AlertKind.REGISTRY_UNREACHABLE,
        "Registry unreachable",
        "Check DNS, network and TLS to the registry; a plain-HTTP registry must be listed in "
        "DOCKWARDEN_INSECURE_REGISTRIES.",
    ),
    RateLimited.kind: Problem(
        AlertKind.RATE_LIMITED,
        "Registry rate limit",
        "The registry keeps answering 429. Logging in (`docker login`) usually raises the "
        "limit; checks resume on their own.",
    ),
    # The kinds below have no alert kind of their own: said under the nearest one, with the
    # real problem kept in Alert.extra["problem"] and in the title.
    ManifestNotFound.kind: Problem(
        AlertKind.REGISTRY_UNREACHABLE,
        "Image not found in registry",
        "The repository or tag is not in the registry any more; check the image name.",
    ),
    BadResponse.kind: Problem(
        AlertKind.REGISTRY_UNREACHABLE,
        "Registry answered garbage",
        "The registry answered something DockWarden cannot read; see the logs.",
    ),
    BadTagRule.kind: Problem(
        AlertKind.REGISTRY_UNREACHABLE,
        "Bad tag rule label",
        "Fix the container's dockwarden.semver or dockwarden.tags.include/exclude label (a "
        "regular expression matching whole tag names); its digest is not checked meanwhile.",
    ),
}


def problem(kind: str) -> Problem:
    """How a problem kind is said; a kind not in the table under its own name."""
    return PROBLEMS.get(kind) or Problem(AlertKind.REGISTRY_UNREACHABLE, kind, "see the logs.")


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
        title=f"Update available: {named(update.container, stopped=update.stopped)}",
        text=f"{newer or update.image + ' has a newer digest.'} {how}",
        fields=(
            Field("Container", update.container),
            *compose_fields(update.compose),
            *stopped_fields(update.stopped),
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


def compose_fields(compose: str | None) -> tuple[Field, ...]:
    """The Compose project and service of a container Compose made (PROJECT/SERVICE)."""
    if not compose:
        return ()
    project, _, service = compose.partition("/")
    return (Field("Compose project", project), Field("Compose service", service))


def named(container: str, *, stopped: bool) -> str:
    """"web (stopped)" for a stopped container (DOCKWARDEN_INCLUDE_STOPPED), else "web"."""
    return f"{container} (stopped)" if stopped else container


def stopped_fields(stopped: bool) -> tuple[Field, ...]:
    """The State field of a stopped container: it is checked and updated stopped."""
    return (Field("State", "stopped"),) if stopped else ()


def rolled_back_note(container: str) -> str:
    """Added to an update alert for a digest the container was rolled back from once."""
    return (f"{container} was rolled back from this digest once, so it is not applied "
            "automatically.")


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
    said = problem(kind)
    first = results[0].error
    raw_scheme = first.scheme if first else None
    scheme = safe_scheme(raw_scheme)
    status = status_code(first.message) if first else None
    containers = ", ".join(sorted({r.container for r in results}))
    # Kind, status code and host only: the registry's own words stay in the logs.
    lines = [f"{said.title} at {registry}" + (f" (HTTP {status})" if status else "") + "."]
    if scheme:
        lines.append(f"The registry asks for the {scheme!r} auth scheme.")
    elif raw_scheme:
        lines.append("The registry asks for an auth scheme with an unreadable name.")
    lines.append(f"Not checked: {containers}.")
    lines.append(f"What to do: {said.advice}")
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
        kind=said.alert,
        title=f"{said.title}: {registry}",
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


def engine_alert(message: str, *, host: str | None = None) -> Alert:
    """Said once when a pass cannot list the engine's containers (engine down or failing);
    with several hosts, once per host that does not answer while the others are checked."""
    if host is None:
        title = "Docker engine problem: nothing was checked"
        rest = "No container is checked until it answers"
        extra = {"problem": "engine_unreachable"}
    else:
        title = f"Docker host {host} does not answer: its containers were not checked"
        rest = "The other hosts are checked as usual; this one's containers wait until it answers"
        extra = {"problem": "engine_unreachable", "host": host}
    return Alert(
        kind=AlertKind.ENGINE_UNREACHABLE,
        title=title,
        text=(
            f"{safe_text(message)}\n{rest}; DockWarden keeps trying on schedule and says so "
            "once it does."
        ),
        fields=(Field("Problem", "engine_unreachable"),
                *((Field("Host", host),) if host is not None else ())),
        extra=extra,
    )


def engine_recovered_alert(*, host: str | None = None) -> Alert:
    """Said once when the Docker engine (a host's, with several) answers again after an
    engine_unreachable alert."""
    what = "The Docker engine" if host is None else f"Docker host {host}"
    return Alert(
        kind=AlertKind.RECOVERED,
        title=f"{what} recovered" if host is not None else "Docker engine recovered",
        text=f"{what} answers again; checks are back on schedule.",
        fields=(Field("Cleared", "engine_unreachable"),
                *((Field("Host", host),) if host is not None else ())),
        extra={"problem": "engine_unreachable", **({"host": host} if host else {})},
    )


def result_alert(result: UpdateResult, *, update_id: str | None, actor: str | None) -> Alert:
    """update_succeeded / update_failed for what an update did."""
    ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
    who = f" (by {actor})" if actor else ""
    name = named(result.container, stopped=result.stopped)
    if result.outcome is UpdateOutcome.UPDATED:
        title = f"Updated: {name}"
        text = f"{result.container} now runs {short_digest(result.new_digest)}{who}."
    elif result.outcome is UpdateOutcome.UP_TO_DATE:
        title = f"Already up to date: {name}"
        text = f"{result.container} already runs {short_digest(result.new_digest)}{who}."
    elif result.outcome is UpdateOutcome.ROLLED_BACK:
        title = f"Update rolled back: {name}"
        text = (
            f"The new container did not come up; {result.container} is back on "
            f"{short_digest(result.old_digest)}{who}. {safe_text(result.message)}"
        )
    else:
        title = f"Update failed: {name}"
        text = f"{safe_text(result.message)}{who}"
    fields = _outcome_fields(result, ("Old", "New"), actor,
                             (*compose_fields(result.compose), *stopped_fields(result.stopped)))
    # Back to the previous image in one tap (admins only, like Approve): bot/update/rollback.py.
    actions = ((Action("rollback", result.container, "Roll back"),)
               if result.outcome is UpdateOutcome.UPDATED else ())
    return Alert(
        kind=AlertKind.UPDATE_SUCCEEDED if ok else AlertKind.UPDATE_FAILED,
        title=title,
        text=text.strip(),
        fields=fields,
        actions=actions,
        update_id=update_id,
        container=result.container,
        extra={"outcome": result.outcome.value, "message": result.message},
    )


def _outcome_fields(
    result: UpdateResult | RollbackResult, names: tuple[str, str], actor: str | None,
    about: tuple[Field, ...] = (),
) -> tuple[Field, ...]:
    """Container (and `about` it), outcome, the digests before and after (under `names`), and
    who asked."""
    return (
        Field("Container", result.container),
        *about,
        Field("Outcome", result.outcome.value),
        Field(names[0], short_digest(result.old_digest)),
        Field(names[1], short_digest(result.new_digest)),
        *((Field("By", actor),) if actor else ()),
    )


def rollback_alert(result: RollbackResult, actor: str | None) -> Alert:
    """update_succeeded (rolled back) or update_failed (the rollback failed) for the chats."""
    who = f" (by {actor})" if actor else ""
    ok = result.outcome is RollbackOutcome.ROLLED_BACK
    if ok:
        title = f"Rolled back: {result.container}"
        text = (f"{result.container} is back on {short_digest(result.new_digest)}{who}; "
                f"{short_digest(result.old_digest)} is offered for approval only from now on.")
    else:
        title = f"Rollback failed: {result.container}"
        text = f"{safe_text(result.message)}{who}"
    return Alert(
        kind=AlertKind.UPDATE_SUCCEEDED if ok else AlertKind.UPDATE_FAILED,
        title=title,
        text=text,
        fields=_outcome_fields(result, ("Was", "Now"), actor),
        container=result.container,
        extra={"outcome": result.outcome.value, "message": result.message},
    )


def self_update_alert(result: UpdateResult, actor: str | None) -> Alert:
    """update_succeeded / update_failed, said by the DockWarden that runs after a self-update:
    that it is up, and on what."""
    alert = result_alert(result, update_id=None, actor=actor)
    running = result.new_digest if result.outcome is UpdateOutcome.UPDATED else result.old_digest
    return replace(
        alert,
        title=f"DockWarden is up: {result.container}",
        text=f"DockWarden is up again on {short_digest(running)}. {alert.text}",
    )


def sample_alert(host: str, now: datetime) -> Alert:
    """The alert `dockwarden notify --test` sends."""
    when = now.strftime("%Y-%m-%d %H:%M UTC")
    return Alert(
        AlertKind.RECOVERED,
        "DockWarden test alert",
        f"Alerts from DockWarden reach this channel (sent by `dockwarden notify --test` on "
        f"{host} at {when}). Nothing to do.",
    )


def render_text(alert: Alert) -> str:
    """Plain text of an alert: title, text, fields, and the commands its buttons stand for."""
    lines = [alert.title, alert.text]
    lines.extend(f"{f.name}: {f.value}" for f in alert.fields)
    if alert.actions:
        lines.append("  ".join(f"[{a.text}: /{a.verb} {a.target}]" for a in alert.actions))
    return "\n".join(line for line in lines if line)
