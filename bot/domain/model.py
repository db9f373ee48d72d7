"""Value objects shared by the core's layers: workloads, check results, update results.

They are plain frozen dataclasses so the checker, the updater, the store, the commands and the
CLI speak the same language without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from bot.domain.targets import LOCAL_HOST, split_key


class CheckStatus(StrEnum):
    """Outcome of checking one workload (the JSON contract's `status`)."""

    UP_TO_DATE = "up_to_date"
    UPDATE_AVAILABLE = "update_available"
    SKIPPED = "skipped"
    ERROR = "error"


class SkipReason(StrEnum):
    """Why a workload was not compared (the JSON contract's `reason`)."""

    PINNED_DIGEST = "pinned_digest"
    LOCAL_IMAGE = "local_image"
    DISABLED = "disabled"


class UpdateOutcome(StrEnum):
    """Outcome of one update (the JSON contract's `outcome`)."""

    UPDATED = "updated"
    UP_TO_DATE = "up_to_date"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


class UpdateState(StrEnum):
    """Where a found update stands (the store's `updates.state`).

    pending -> approved -> applied | failed; pending -> ignored; a newer digest makes the
    container's pending, approved and failed rows superseded.
    """

    PENDING = "pending"  # found, waiting for an approval (or for the auto policy)
    APPROVED = "approved"  # approved, being applied
    APPLIED = "applied"  # the container runs it
    IGNORED = "ignored"  # dismissed with /ignore
    SUPERSEDED = "superseded"  # a newer digest, or another way, took its place
    FAILED = "failed"  # applying it failed; it may be approved again


# Rows that /approve (or /ignore's newest) can still act on, and rows /pending lists.
APPROVABLE_STATES = (UpdateState.PENDING, UpdateState.FAILED, UpdateState.IGNORED)
OPEN_STATES = (UpdateState.PENDING, UpdateState.APPROVED, UpdateState.FAILED)


class Policy(StrEnum):
    """What is done with an update found for a workload (the `dockwarden.policy` label)."""

    NOTIFY = "notify"  # say so; update only on /pull
    APPROVE = "approve"  # say so with Approve / Ignore buttons
    AUTO = "auto"  # apply it (within DOCKWARDEN_AUTO_WINDOW)


# What Compose writes on each container it makes: its project, and the service in it.
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


def compose_of(labels: Mapping[str, str]) -> str | None:
    """`PROJECT/SERVICE` of a container Compose made; None for any other."""
    project, service = labels.get(COMPOSE_PROJECT_LABEL), labels.get(COMPOSE_SERVICE_LABEL)
    return f"{project}/{service}" if project and service else None


@dataclass(frozen=True)
class Workload:
    """A running container (or Swarm service) as the checker sees it."""

    name: str
    id: str
    image: str  # the reference the workload was created from, as written
    image_id: str  # local image id (sha256:...)
    repo_digests: tuple[str, ...]  # RepoDigests of the local image
    labels: dict[str, str] = field(default_factory=dict)
    kind: str = "container"  # "container" or "service"
    # False where the engine gives built and imported images a RepoDigest of their own
    # (containerd image store, Podman): there a RepoDigest does not prove a pull.
    digests_prove_pull: bool = True
    stopped: bool = False  # listed with DOCKWARDEN_INCLUDE_STOPPED and not running
    host: str = LOCAL_HOST  # the Docker host it runs on (name is HOST/NAME when several)


@dataclass(frozen=True)
class CheckError:
    """A registry problem met while checking one workload (the JSON contract's `error`)."""

    kind: str  # unsupported_challenge | auth_failed | unreachable | rate_limited | not_found | ...
    message: str
    registry: str
    scheme: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The contract's error object."""
        return {
            "kind": self.kind,
            "message": self.message,
            "registry": self.registry,
            "scheme": self.scheme,
        }


@dataclass(frozen=True)
class CheckResult:
    """What one pass found for one workload."""

    container: str
    image: str  # normalised reference, e.g. docker.io/library/nginx:latest
    status: CheckStatus
    local_digest: str | None = None
    remote_digest: str | None = None
    reason: SkipReason | None = None
    error: CheckError | None = None
    policy: Policy | None = None
    kind: str = "container"
    new_tag: str | None = None  # a newer version tag proposed (remote_digest is its digest)
    current_version: str | None = None  # org.opencontainers.image.version of what runs
    new_version: str | None = None  # ... and of what the update brings
    min_age: timedelta | None = None  # a new digest is proposed once seen this long
    # Which endpoint gave remote_digest, when Docker Hub was asked through registry mirrors
    # (a mirror's URL, or docker.io); in JSON only then, so the contract stays as it was.
    endpoint: str | None = None
    compose: str | None = None  # PROJECT/SERVICE of a container Compose made (compose_of)
    stopped: bool = False  # the container is not running (DOCKWARDEN_INCLUDE_STOPPED)
    host: str = LOCAL_HOST  # the Docker host (`container` is HOST/NAME when several)

    def as_json(self) -> dict[str, Any]:
        """The contract's result object (`endpoint` only when mirrors were asked)."""
        found: dict[str, Any] = {
            "container": split_key(self.container)[1],
            "host": self.host,
            "image": self.image,
            "status": self.status.value,
            "local_digest": self.local_digest,
            "remote_digest": self.remote_digest,
            "reason": self.reason.value if self.reason else None,
            "error": self.error.as_json() if self.error else None,
            "new_tag": self.new_tag,
            "current_version": self.current_version,
            "new_version": self.new_version,
        }
        if self.endpoint is not None:
            found["endpoint"] = self.endpoint
        return found


@dataclass(frozen=True)
class CheckReport:
    """One whole check pass."""

    checked_at: datetime
    results: tuple[CheckResult, ...]
    hosts: tuple[str, ...] = ()  # the hosts that answered (several hosts only)
    unreachable: Mapping[str, str] = field(default_factory=dict)  # host -> why it did not

    def as_json(self) -> dict[str, Any]:
        """The contract's `dockwarden check --json` document (`unreachable_hosts` when some)."""
        found: dict[str, Any] = {
            "checked_at": self.checked_at.isoformat(),
            "results": [r.as_json() for r in self.results],
        }
        if self.unreachable:
            found["unreachable_hosts"] = [
                {"host": host, "message": message}
                for host, message in sorted(self.unreachable.items())
            ]
        return found


NOTHING_CHANGED = "nothing was changed"

OutcomeT = TypeVar("OutcomeT", bound=StrEnum)


@dataclass(frozen=True)
class Change(Generic[OutcomeT]):
    """What one update or rollback of a container did: from which digest to which, and why."""

    container: str  # the key: HOST/NAME when several hosts are watched
    outcome: OutcomeT
    old_digest: str | None
    new_digest: str | None
    message: str
    host: str = LOCAL_HOST

    def as_json(self) -> dict[str, Any]:
        """The contract's `dockwarden update --json` (and `rollback --json`) document."""
        return {
            "container": split_key(self.container)[1],
            "host": self.host,
            "outcome": self.outcome.value,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "message": self.message,
        }


@dataclass(frozen=True)
class UpdateResult(Change[UpdateOutcome]):
    """What one update did; built by the constructors below, one per outcome."""

    # Said in the result alert like the update alert says them; set by the updater.
    compose: str | None = None  # PROJECT/SERVICE of a container Compose made (compose_of)
    stopped: bool = False  # the container was stopped, and is left so

    @classmethod
    def updated(cls, container: str, old: str | None, new: str, message: str) -> UpdateResult:
        """The container (or service) runs `new` now."""
        return cls(container, UpdateOutcome.UPDATED, old, new, message)

    @classmethod
    def up_to_date(
        cls, container: str, old: str | None, new: str, what: str, familiar: str
    ) -> UpdateResult:
        """`what` (the container, or "service NAME") already runs `new`; nothing was done."""
        return cls(
            container, UpdateOutcome.UP_TO_DATE, old, new,
            f"{what} already runs {familiar} at {short_digest(new)}; {NOTHING_CHANGED}",
        )

    @classmethod
    def rolled_back(cls, container: str, old: str | None, new: str, message: str) -> UpdateResult:
        """The update to `new` failed and the container runs `old` again."""
        return cls(container, UpdateOutcome.ROLLED_BACK, old, new, message)

    @classmethod
    def failed(
        cls, container: str, message: str, old: str | None = None, new: str | None = None
    ) -> UpdateResult:
        """The update failed (what runs now, the message says)."""
        return cls(container, UpdateOutcome.FAILED, old, new, message)

    @classmethod
    def untouched(
        cls,
        container: str,
        why: str,
        old: str | None = None,
        new: str | None = None,
        *,
        note: str = "",
    ) -> UpdateResult:
        """The update failed before anything was touched: "WHY; nothing was changed[NOTE]"."""
        return cls.failed(container, f"{why}; {NOTHING_CHANGED}{note}", old, new)


@dataclass(frozen=True)
class Basis:
    """What an update was found for: the normalised reference and the digest it ran then.

    An approval is applied only while the container still runs exactly that.
    """

    image: str
    digest: str | None
    new_tag: str | None = None  # a newer version tag the update moves the container to


def short_digest(digest: str | None) -> str:
    """`sha256:0123456789ab` (12 hex digits): enough to tell digests apart; '-' for none."""
    if not digest:
        return "-"
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}" if hex_part else digest[:19]
