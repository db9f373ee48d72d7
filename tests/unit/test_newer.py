"""The tag step of a pass over plain plans: who gets a listing, and what it costs."""

from __future__ import annotations

from collections.abc import Iterable

from bot.check.checker import Plan, plan_workload
from bot.check.newer_tags import newer_tags
from bot.check.tagrules import Proposal
from bot.domain.model import Workload
from bot.domain.reference import ImageRef
from bot.domain.versions import Level
from bot.errors import RegistryError
from bot.registry.tags import Repository, list_tags

DIGEST = "sha256:" + "a" * 64


class Lister:
    """Tag lists from a dict, through the real per-pass spreading; counts listings."""

    def __init__(self, tags: dict[str, list[str]]) -> None:
        self.known = tags
        self.listed: list[str] = []

    async def tags(self, ref: ImageRef, *, page_size: int | None = None) -> list[str]:
        self.listed.append(ref.repository)
        return self.known[ref.repository]

    async def tag_lists(
        self, refs: Iterable[ImageRef]
    ) -> dict[Repository, list[str] | RegistryError]:
        return await list_tags(self, refs)


def _plan(name: str, image: str, kind: str = "container", **labels: str) -> Plan:
    repo = image.rsplit(":", 1)[0]
    workload = Workload(name=name, id=name, image=image, image_id="sha256:" + "b" * 64,
                        repo_digests=(f"{repo}@{DIGEST}",), labels=labels, kind=kind)
    return plan_workload(workload, label_enable=False, default_policy="approve")


async def test_one_listing_per_repository_and_none_for_services_or_unversioned_tags() -> None:
    source = Lister({"app": ["1.0.0", "1.1.0", "2.0.0"]})
    plans = [
        _plan("a", "registry.example/app:1.0.0"),
        _plan("b", "registry.example/app:1.0.0", **{"dockwarden.semver": "major"}),
        _plan("latest", "registry.example/app:latest"),
        _plan("svc", "registry.example/app:1.0.0", kind="service"),
    ]
    found = await newer_tags(plans, source, Level.MINOR)
    assert source.listed == ["app"]
    assert {k: v.tag for k, v in found.items() if isinstance(v, Proposal)} == {
        "a": "1.1.0", "b": "2.0.0"}


async def test_no_rule_no_listing() -> None:
    source = Lister({})
    found = await newer_tags([_plan("a", "registry.example/app:1.0.0")], source, None)
    assert found == {} and source.listed == []
