"""Newer version tags in a check pass: each workload's rule, one listing per repository, proposals.

Only workloads with a tag rule (bot/check/tagrules.py) whose running tag is a version cost anything:
their repositories are listed once each per pass, and the proposed tags' digests are asked for
in the same batch as every other reference. A proposal turns the workload's result into
`update_available` with `new_tag` set and `remote_digest` the new tag's digest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from bot.check.tagrules import Proposal, TagRule, propose, rule_of
from bot.domain.model import CheckError, CheckResult, CheckStatus
from bot.domain.reference import ImageRef
from bot.domain.versions import Level, parse_version
from bot.errors import BadTagRule, RegistryError
from bot.registry.tags import Repository, tags_of

if TYPE_CHECKING:
    from bot.check.checker import Plan

# Per workload id: the tag proposed, or why none could be looked for.
Found = Proposal | BadTagRule | RegistryError


class TagSource(Protocol):
    """What the tag step needs from a registry client (RegistryClient is the real one)."""

    async def tag_lists(
        self, refs: Iterable[ImageRef]
    ) -> Mapping[Repository, list[str] | RegistryError]: ...


async def newer_tags(
    plans: Sequence[Plan], source: object, default: Level | None
) -> dict[str, Found]:
    """The tag each planned workload should be offered, listing each repository once."""
    found: dict[str, Found] = {}
    wanted: list[tuple[Plan, ImageRef, TagRule]] = []
    for plan in plans:
        ref = plan.lookup
        if ref is None or plan.workload.kind != "container":
            # Decided without the registry (pinned, local, disabled); or a Swarm service, which
            # is updated along its own tag's digest only.
            continue
        try:
            rule = rule_of(plan.workload.labels, default)
        except BadTagRule as error:
            found[plan.workload.id] = error
            continue
        if rule is not None and ref.tag is not None and parse_version(ref.tag) is not None:
            wanted.append((plan, ref, rule))
    if not wanted:
        return found
    tag_lists = getattr(source, "tag_lists", None)
    if tag_lists is None:
        return found  # a registry client that cannot list tags: digest checks only
    lists: Mapping[Repository, list[str] | RegistryError] = await tag_lists(
        [ref for _, ref, _ in wanted]
    )
    for plan, ref, rule in wanted:
        listing = tags_of(lists, ref)
        if isinstance(listing, RegistryError):
            found[plan.workload.id] = listing
        elif listing:
            proposal = propose(ref.tag, listing, rule)
            if proposal is not None:
                found[plan.workload.id] = proposal
    return found


def proposed_refs(plans: Sequence[Plan], found: Mapping[str, Found]) -> list[ImageRef]:
    """The references of the proposed tags, to look their digests up with the others."""
    refs: list[ImageRef] = []
    for plan in plans:
        proposal = found.get(plan.workload.id)
        if isinstance(proposal, Proposal) and plan.lookup is not None:
            refs.append(plan.lookup.with_tag(proposal.tag))
    return refs


def with_newer(
    result: CheckResult,
    plan: Plan,
    found: Found | None,
    answers: Mapping[ImageRef, str | RegistryError],
) -> CheckResult:
    """The digest check's result, changed by what the tag step found for the workload."""
    if found is None or plan.lookup is None or result.status is CheckStatus.SKIPPED:
        return result
    if isinstance(found, BadTagRule):
        error = CheckError(found.kind, str(found), plan.lookup.registry)
        return dataclasses.replace(result, status=CheckStatus.ERROR, remote_digest=None,
                                   error=error)
    if isinstance(found, RegistryError):
        if result.status is CheckStatus.ERROR:
            return result
        return _failed(result, found)
    answer = answers.get(plan.lookup.with_tag(found.tag))
    if isinstance(answer, RegistryError):
        return _failed(result, answer)
    if answer is None:
        return result
    return dataclasses.replace(
        result,
        status=CheckStatus.UPDATE_AVAILABLE,
        local_digest=plan.local[0] if plan.local else result.local_digest,
        remote_digest=answer,
        error=None,
        new_tag=found.tag,
    )


def _failed(result: CheckResult, error: RegistryError) -> CheckResult:
    return dataclasses.replace(
        result,
        status=CheckStatus.ERROR,
        remote_digest=None,
        error=CheckError(error.kind, str(error), error.registry, error.scheme),
    )
