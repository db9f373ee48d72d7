"""One check pass: the engine's workloads and the registry's answers -> a CheckReport.

The rules are pure functions over plain Workload values (`plan_workload`, `decide`); `Checker`
only gathers workloads, asks the registry once per distinct reference, and applies them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.check.image_info import Describer
from bot.check.newer_tags import newer_tags, proposed_refs, with_newer
from bot.domain.model import (
    CheckError,
    CheckReport,
    CheckResult,
    CheckStatus,
    Policy,
    SkipReason,
    Workload,
    compose_of,
)
from bot.domain.policy import min_age_of
from bot.domain.reference import ImageRef, is_image_id, parse_reference
from bot.domain.targets import LOCAL_HOST, container_key, parse_target, resolve_target, split_key
from bot.domain.versions import Level
from bot.engines.swarm import SERVICE_ID_LABEL
from bot.errors import (
    ContainerNotFound,
    EngineError,
    HostNotAnswering,
    InvalidReference,
    RegistryError,
)
from bot.registry.mirrors import with_endpoints

log = logging.getLogger(__name__)

# The first of these a workload carries decides; DockWarden's own label wins over the others,
# which are honoured so people coming from Watchtower or Diun need not relabel.
ENABLE_LABELS = ("dockwarden.enable", "com.centurylinklabs.watchtower.enable", "diun.enable")
POLICY_LABEL = "dockwarden.policy"

# Go's strconv.ParseBool, which Watchtower uses for its labels, plus the usual yes/no words.
_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})


class WorkloadSource(Protocol):
    """What the checker needs from an engine (DockerEngine is the real one)."""

    def list_workloads(self, *, stopped: bool = False) -> list[Workload]: ...


class DigestSource(Protocol):
    """What the checker needs from a registry client (RegistryClient is the real one)."""

    async def remote_digests(
        self, refs: Iterable[ImageRef]
    ) -> Mapping[ImageRef, str | RegistryError]: ...


def label_flag(labels: Mapping[str, str]) -> bool | None:
    """The enable labels' verdict: True, False, or None when none is set (or none is a bool)."""
    for key in ENABLE_LABELS:
        value = labels.get(key)
        if value is None:
            continue
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def is_watched(labels: Mapping[str, str], *, label_enable: bool) -> bool:
    """Opted out by label -> no; in label-enable mode only an explicit opt-in -> yes."""
    flag = label_flag(labels)
    if label_enable:
        return flag is True
    return flag is not False


def policy_of(labels: Mapping[str, str], default: Policy) -> Policy:
    """The workload's policy: its dockwarden.policy label when valid, else the default."""
    try:
        return Policy(labels.get(POLICY_LABEL, "").strip().lower())
    except ValueError:
        return Policy(default)


def local_digests(ref: ImageRef, repo_digests: Iterable[str]) -> tuple[str, ...]:
    """Digests of the RepoDigests that name the same registry and repository as `ref`."""
    return _by_repository(tuple(repo_digests)).get((ref.registry, ref.repository), ())


# Cached: an image tagged into many repositories carries all their entries, and every container
# of it is planned against them; indexed once per image instead of scanned once per container.
@functools.lru_cache(maxsize=1024)
def _by_repository(repo_digests: tuple[str, ...]) -> dict[tuple[str, str], tuple[str, ...]]:
    """RepoDigests entries as (registry, repository) -> digests, in their order, once each."""
    found: dict[tuple[str, str], list[str]] = {}
    for entry in repo_digests:
        try:
            parsed = parse_reference(entry)
        except InvalidReference:
            continue  # "<none>@<none>" and the like
        if parsed.digest:
            digests = found.setdefault((parsed.registry, parsed.repository), [])
            if parsed.digest not in digests:
                digests.append(parsed.digest)
    return {key: tuple(digests) for key, digests in found.items()}


@dataclass(frozen=True)
class Plan:
    """A workload with either its verdict already reached or the reference to look up."""

    workload: Workload
    policy: Policy
    image: str  # the normalised reference (or the text as written when it is none)
    result: CheckResult | None = None  # decided without the registry
    lookup: ImageRef | None = None
    local: tuple[str, ...] = ()  # digests of the same repository in RepoDigests
    min_age: timedelta | None = None  # DOCKWARDEN_MIN_AGE or the dockwarden.min_age label


def plan_workload(
    workload: Workload,
    *,
    label_enable: bool,
    default_policy: Policy,
    min_age: timedelta | None = None,
) -> Plan:
    """Apply the rules that need no registry: disabled, not a reference, pinned, local."""
    policy = policy_of(workload.labels, default_policy)

    def skipped(image: str, reason: SkipReason, local_digest: str | None = None) -> Plan:
        result = CheckResult(
            container=workload.name,
            image=image,
            status=CheckStatus.SKIPPED,
            local_digest=local_digest,
            reason=reason,
            policy=policy,
            kind=workload.kind,
            host=workload.host,
        )
        return Plan(workload, policy, image, result=result)

    ref: ImageRef | None = None
    # A container created from an image id has no reference to check.
    if not is_image_id(workload.image, workload.image_id):
        try:
            ref = parse_reference(workload.image)
        except InvalidReference:
            ref = None
    image = str(ref) if ref is not None else workload.image
    if not is_watched(workload.labels, label_enable=label_enable):
        return skipped(image, SkipReason.DISABLED)
    if ref is None:
        return skipped(image, SkipReason.LOCAL_IMAGE)
    if ref.digest:
        return skipped(image, SkipReason.PINNED_DIGEST, ref.digest)
    local = local_digests(ref, workload.repo_digests)
    if not local:
        # Built here, or pulled by a platform digest: no index digest to compare with.
        return skipped(image, SkipReason.LOCAL_IMAGE)
    return Plan(workload, policy, image, lookup=ref, local=local,
                min_age=min_age_of(workload.labels, min_age))


def _result(
    plan: Plan,
    status: CheckStatus,
    *,
    local: str | None = None,
    remote: str | None = None,
    error: CheckError | None = None,
) -> CheckResult:
    return CheckResult(
        container=plan.workload.name,
        image=plan.image,
        status=status,
        local_digest=local,
        remote_digest=remote,
        error=error,
        policy=plan.policy,
        kind=plan.workload.kind,
        host=plan.workload.host,
        min_age=plan.min_age,
        compose=compose_of(plan.workload.labels),
        stopped=plan.workload.stopped,
    )


def decide(plan: Plan, answer: str | RegistryError | None) -> CheckResult:
    """The verdict for a planned workload, given the registry's answer for its reference."""
    if plan.result is not None:
        return plan.result
    if isinstance(answer, str):
        if answer in plan.local:
            return _result(plan, CheckStatus.UP_TO_DATE, local=answer, remote=answer)
        return _result(plan, CheckStatus.UPDATE_AVAILABLE, local=plan.local[0], remote=answer)
    if (
        isinstance(answer, RegistryError)
        and answer.kind == "not_found"
        and not plan.workload.digests_prove_pull
    ):
        # Built or imported here: on this engine its own RepoDigest looks like a pull, and the
        # registry's "no such repository or tag" is what tells it apart (as on the classic
        # store, where such an image has no RepoDigest at all).
        return CheckResult(
            container=plan.workload.name,
            image=plan.image,
            status=CheckStatus.SKIPPED,
            reason=SkipReason.LOCAL_IMAGE,
            policy=plan.policy,
            kind=plan.workload.kind,
            host=plan.workload.host,
        )
    if answer is None:
        registry = plan.lookup.registry if plan.lookup else ""
        error = CheckError("bad_response", "the registry client gave no answer", registry)
    else:
        error = CheckError(answer.kind, str(answer), answer.registry, answer.scheme)
    local = plan.local[0] if plan.local else None
    return _result(plan, CheckStatus.ERROR, local=local, error=error)


def select(
    workloads: Sequence[Workload],
    names: Sequence[str] | None,
    hosts: Sequence[str] = (LOCAL_HOST,),
    unreachable: Mapping[str, str] | None = None,
) -> list[Workload]:
    """The workloads named (all when no names), each as `NAME` or `HOST/NAME`.

    An unknown name raises ContainerNotFound, a bare name on several hosts AmbiguousTarget,
    a name on a host that did not answer HostNotAnswering saying so.
    """
    if not names:
        return list(workloads)
    by_pair = {(w.host, split_key(w.name)[1]): w for w in workloads}
    chosen: dict[str, Workload] = {}
    for text in names:
        target = parse_target(text)
        try:
            host, name = resolve_target(target, hosts, by_pair)
        except ContainerNotFound:
            down = unreachable or {}
            if target.host in down or (target.host is None and down):
                where = target.host or ", ".join(sorted(down))
                raise HostNotAnswering(
                    f"{target} was not checked: host {where} did not answer"
                ) from None
            raise
        workload = by_pair[(host, name)]
        chosen.setdefault(workload.name, workload)
    return list(chosen.values())


class Checker:
    """Runs check passes over the workloads of one engine, or of several hosts' engines, against
    the registries; each distinct reference is asked for once, whichever hosts run it."""

    def __init__(
        self,
        engine: WorkloadSource | Mapping[str, WorkloadSource],
        registry: DigestSource,
        *,
        label_enable: bool,
        default_policy: Policy,
        semver: Level | None = None,
        min_age: timedelta | None = None,
        describer: Describer | None = None,
        include_stopped: bool = False,
    ) -> None:
        # Host name -> engine; with several, workloads are named HOST/NAME (bot/domain/targets).
        self.engines: dict[str, WorkloadSource] = (
            dict(engine) if isinstance(engine, Mapping) else {LOCAL_HOST: engine}
        )
        self.several = len(self.engines) > 1
        self.include_stopped = include_stopped  # DOCKWARDEN_INCLUDE_STOPPED
        self.registry = registry
        self.label_enable = label_enable
        self.default_policy = default_policy
        self.min_age = min_age  # DOCKWARDEN_MIN_AGE (bot/domain/policy.py)
        self.semver = semver  # the default tag rule level; None: digest checks only
        # Reads what found updates bring (bot/check/image_info.py); None: digests and tags only.
        self.describer = describer

    async def workloads(self) -> list[Workload]:
        """Every host's running containers and, on a swarm manager, services instead of their
        tasks: with one host, its EngineError when it does not answer; with several, the
        workloads of those that do."""
        found, _ = await self._listing()
        return found

    async def _listing(self) -> tuple[list[Workload], dict[str, EngineError]]:
        """All hosts listed at once: their workloads, and the hosts that did not answer (with
        one host, its EngineError is raised instead)."""
        hosts = list(self.engines)
        listed = await asyncio.gather(
            *(self._host_workloads(host) for host in hosts), return_exceptions=True
        )
        found: list[Workload] = []
        unreachable: dict[str, EngineError] = {}
        for host, outcome in zip(hosts, listed, strict=True):
            if isinstance(outcome, EngineError):
                unreachable[host] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                found.extend(outcome)
        if unreachable and not self.several:
            raise next(iter(unreachable.values()))
        return sorted(found, key=lambda w: (w.kind, w.name)), unreachable

    async def _host_workloads(self, host: str) -> list[Workload]:
        engine = self.engines[host]
        list_services = getattr(engine, "list_services", None)
        services: list[Workload] = []
        stopped = self.include_stopped
        if list_services is None:
            containers = await asyncio.to_thread(engine.list_workloads, stopped=stopped)
        else:
            containers, services = await asyncio.gather(
                asyncio.to_thread(engine.list_workloads, stopped=stopped),
                asyncio.to_thread(list_services),
            )
        service_ids = {s.id for s in services}
        containers = [c for c in containers if c.labels.get(SERVICE_ID_LABEL) not in service_ids]
        return [
            dataclasses.replace(
                w, host=host, name=container_key(host, w.name, several=self.several)
            )
            for w in containers + services
        ]

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        """One pass: every distinct reference looked up once, all of them concurrently."""
        checked_at = datetime.now(UTC)
        listed, down = await self._listing()
        unreachable = {host: str(exc) for host, exc in down.items()}
        chosen = select(listed, names, list(self.engines), unreachable)
        plans = [
            plan_workload(w, label_enable=self.label_enable, default_policy=self.default_policy,
                          min_age=self.min_age)
            for w in chosen
        ]
        # Newer version tags first (one listing per repository), so that the proposed tags'
        # digests are asked for in the same batch as the running ones.
        found = await newer_tags(plans, self.registry, self.semver)
        refs = list(dict.fromkeys(p.lookup for p in plans if p.lookup is not None))
        refs = list(dict.fromkeys(refs + proposed_refs(plans, found)))
        answers: Mapping[ImageRef, str | RegistryError] = {}
        if refs:
            answers = await self.registry.remote_digests(refs)
        results = tuple(
            with_newer(
                decide(p, answers.get(p.lookup) if p.lookup is not None else None),
                p, found.get(p.workload.id), answers,
            )
            for p in plans
        )
        results = with_endpoints(results, [p.lookup for p in plans], self.registry)
        if self.describer is not None:
            results = await self.describer.describe(results)
        log.debug("checked %d workloads, %d distinct references", len(results), len(refs))
        answered = tuple(h for h in self.engines if h not in down) if self.several else ()
        return CheckReport(
            checked_at=checked_at, results=results, hosts=answered, unreachable=unreachable
        )
