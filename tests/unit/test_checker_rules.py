"""The check rules on plain Workload values, and one pass over small fakes of the two ports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import pytest

from bot.check.checker import Checker, is_watched, local_digests, plan_workload, policy_of
from bot.domain.model import CheckStatus, SkipReason, Workload
from bot.domain.reference import ImageRef, parse_reference, split_digest
from bot.engines.swarm import service_workload
from bot.errors import (
    AuthFailed,
    ContainerNotFound,
    ManifestNotFound,
    RegistryError,
    RegistryUnreachable,
    UnsupportedChallenge,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def workload(
    name: str = "web",
    image: str = "nginx:1.25",
    repo_digests: tuple[str, ...] = (f"nginx@{D1}",),
    labels: dict[str, str] | None = None,
) -> Workload:
    return Workload(
        name=name,
        id=f"id-{name}",
        image=image,
        image_id="sha256:" + "a" * 64,
        repo_digests=repo_digests,
        labels=labels or {},
    )


def plan(w: Workload, *, label_enable: bool = False):  # type: ignore[no-untyped-def]
    return plan_workload(w, label_enable=label_enable, default_policy="approve")


class FakeEngine:
    def __init__(self, workloads: list[Workload], services: list[Workload] | None = None) -> None:
        self._workloads = workloads
        self._services = services or []

    def list_workloads(self, *, stopped: bool = False) -> list[Workload]:
        return list(self._workloads)

    def list_services(self) -> list[Workload]:
        return list(self._services)


class FakeRegistry:
    def __init__(self, answers: Mapping[str, str | RegistryError]) -> None:
        self.answers = {parse_reference(k): v for k, v in answers.items()}
        self.asked: Counter[ImageRef] = Counter()
        self.batches = 0

    async def remote_digests(
        self, refs: Iterable[ImageRef]
    ) -> Mapping[ImageRef, str | RegistryError]:
        self.batches += 1
        refs = list(refs)
        self.asked.update(refs)
        return {ref: self.answers[ref] for ref in refs}


@pytest.mark.parametrize(
    "labels",
    [
        {"dockwarden.enable": "false"},
        {"com.centurylinklabs.watchtower.enable": "false"},
        {"diun.enable": "false"},
        {"dockwarden.enable": "FALSE"},
    ],
)
def test_disabled_by_any_enable_label_is_skipped_as_disabled(labels: dict[str, str]) -> None:
    result = plan(workload(labels=labels)).result
    assert result is not None
    assert result.status is CheckStatus.SKIPPED
    assert result.reason is SkipReason.DISABLED


def test_dockwarden_label_wins_over_watchtower_label() -> None:
    labels = {"dockwarden.enable": "true", "com.centurylinklabs.watchtower.enable": "false"}
    assert is_watched(labels, label_enable=False)
    assert is_watched(labels, label_enable=True)


@pytest.mark.parametrize(
    ("labels", "watched"),
    [
        ({}, False),
        ({"dockwarden.enable": "true"}, True),
        ({"com.centurylinklabs.watchtower.enable": "true"}, True),
        ({"diun.enable": "true"}, True),
        ({"dockwarden.enable": "false"}, False),
        ({"dockwarden.enable": "maybe"}, False),
    ],
)
def test_label_enable_mode_watches_only_explicit_opt_ins(
    labels: dict[str, str], watched: bool
) -> None:
    assert is_watched(labels, label_enable=True) is watched


def test_without_label_enable_mode_unlabelled_workloads_are_watched() -> None:
    assert is_watched({}, label_enable=False)
    assert plan(workload()).lookup == parse_reference("nginx:1.25")


def test_pinned_by_digest_is_skipped_with_the_pinned_digest() -> None:
    result = plan(workload(image=f"nginx:1.25@{D2}")).result
    assert result is not None
    assert (result.status, result.reason, result.local_digest) == (
        CheckStatus.SKIPPED,
        SkipReason.PINNED_DIGEST,
        D2,
    )
    assert result.image == f"docker.io/library/nginx:1.25@{D2}"


def test_image_without_repo_digest_of_its_repository_is_local() -> None:
    for digests in [(), (f"other@{D1}",), (f"127.0.0.1:5000/library/nginx@{D1}",)]:
        result = plan(workload(repo_digests=digests)).result
        assert result is not None
        assert result.reason is SkipReason.LOCAL_IMAGE


def test_container_created_from_an_image_id_is_local() -> None:
    for image in ["sha256:" + "b" * 64, "b" * 64]:
        result = plan(workload(image=image)).result
        assert result is not None
        assert result.reason is SkipReason.LOCAL_IMAGE
        assert result.image == image


def test_repo_digests_of_the_same_repository_are_matched_after_normalisation() -> None:
    ref = parse_reference("docker.io/library/nginx:latest")
    entries = [f"nginx@{D1}", "<none>@<none>", f"library/nginx@{D2}", f"ghcr.io/x/nginx@{D3}"]
    assert local_digests(ref, entries) == (D1, D2)
    local_ref = parse_reference("127.0.0.1:5000/app:v1")
    assert local_digests(local_ref, [f"127.0.0.1:5000/app@{D3}", f"app@{D1}"]) == (D3,)


def test_policy_comes_from_label_or_default() -> None:
    assert policy_of({"dockwarden.policy": "auto"}, "approve") == "auto"
    assert policy_of({"dockwarden.policy": "Notify"}, "approve") == "notify"
    assert policy_of({"dockwarden.policy": "yolo"}, "approve") == "approve"
    assert policy_of({}, "notify") == "notify"


async def test_remote_digest_equal_to_any_repo_digest_is_up_to_date() -> None:
    # Docker appends RepoDigests: the match may be any entry, not only the first.
    w = workload(repo_digests=(f"nginx@{D1}", f"nginx@{D2}"))
    checker = Checker(
        FakeEngine([w]), FakeRegistry({"nginx:1.25": D2}), label_enable=False,
        default_policy="approve",
    )
    (result,) = (await checker.check()).results
    assert result.status is CheckStatus.UP_TO_DATE
    assert result.local_digest == result.remote_digest == D2


async def test_new_remote_digest_is_an_update_with_the_first_local_digest() -> None:
    w = workload(repo_digests=(f"nginx@{D1}", f"nginx@{D2}"), labels={"dockwarden.policy": "auto"})
    checker = Checker(
        FakeEngine([w]), FakeRegistry({"nginx:1.25": D3}), label_enable=False,
        default_policy="approve",
    )
    (result,) = (await checker.check()).results
    assert result.status is CheckStatus.UPDATE_AVAILABLE
    assert (result.local_digest, result.remote_digest, result.policy) == (D1, D3, "auto")
    assert result.as_json()["image"] == "docker.io/library/nginx:1.25"


async def test_identical_references_are_looked_up_once_in_one_batch() -> None:
    workloads = [workload(name=f"web{i}") for i in range(200)]
    workloads += [workload(name="api", image="nginx:1.26")]
    registry = FakeRegistry({"nginx:1.25": D1, "nginx:1.26": D2})
    checker = Checker(FakeEngine(workloads), registry, label_enable=False, default_policy="approve")
    report = await checker.check()
    assert len(report.results) == 201
    assert registry.batches == 1
    assert set(registry.asked.values()) == {1}
    assert len(registry.asked) == 2


async def test_registry_error_is_reported_for_its_workloads_only() -> None:
    challenge = UnsupportedChallenge(
        registry="odd.example", repository="x", scheme="negotiate", header="Negotiate"
    )
    registry = FakeRegistry({
        "nginx:1.25": D1,
        "odd.example/x:1": challenge,
        "dead.example/y:1": RegistryUnreachable("connection refused", registry="dead.example"),
    })
    workloads = [
        workload(name="ok"),
        workload(name="odd", image="odd.example/x:1", repo_digests=(f"odd.example/x@{D1}",)),
        workload(name="dead", image="dead.example/y:1", repo_digests=(f"dead.example/y@{D1}",)),
    ]
    checker = Checker(FakeEngine(workloads), registry, label_enable=False, default_policy="approve")
    by_name = {r.container: r for r in (await checker.check()).results}
    assert by_name["ok"].status is CheckStatus.UP_TO_DATE
    odd = by_name["odd"]
    assert odd.status is CheckStatus.ERROR and odd.error is not None
    assert (odd.error.kind, odd.error.scheme, odd.error.registry) == (
        "unsupported_challenge", "negotiate", "odd.example",
    )
    dead = by_name["dead"]
    assert dead.error is not None and dead.error.kind == "unreachable"
    assert dead.error.scheme is None


async def test_unknown_repository_is_local_where_every_image_has_a_repo_digest() -> None:
    # Containerd image store and Podman: a built image carries `name@<its own digest>`.
    registry = FakeRegistry({
        "myapp:1": ManifestNotFound("myapp:1 does not exist", registry="docker.io"),
        "private/app:1": AuthFailed("denied", registry="docker.io"),
    })
    own = Workload("built", "id-built", "myapp:1", "sha256:" + "a" * 64,
                   (f"myapp@{D1}",), digests_prove_pull=False)
    private = Workload("private", "id-private", "private/app:1", "sha256:" + "b" * 64,
                       (f"private/app@{D2}",), digests_prove_pull=False)
    pulled = workload(name="pulled", image="myapp:1", repo_digests=(f"myapp@{D1}",))
    checker = Checker(FakeEngine([own, private, pulled]), registry, label_enable=False,
                      default_policy="approve")
    by_name = {r.container: r for r in (await checker.check()).results}
    assert (by_name["built"].status, by_name["built"].reason) == (
        CheckStatus.SKIPPED, SkipReason.LOCAL_IMAGE)
    assert by_name["built"].error is None
    # Any other refusal is still the registry's problem, to be reported.
    assert by_name["private"].error is not None and by_name["private"].error.kind == "auth_failed"
    # On the classic store a RepoDigest proves a pull: a vanished tag is worth an error.
    assert by_name["pulled"].error is not None and by_name["pulled"].error.kind == "not_found"


async def test_names_select_workloads_and_an_unknown_name_raises() -> None:
    registry = FakeRegistry({"nginx:1.25": D1})
    engine = FakeEngine([workload(name="a"), workload(name="b")])
    checker = Checker(engine, registry, label_enable=False, default_policy="approve")
    report = await checker.check(["b"])
    assert [r.container for r in report.results] == ["b"]
    with pytest.raises(ContainerNotFound):
        await checker.check(["b", "nope"])


async def test_skipped_workloads_are_never_looked_up() -> None:
    registry = FakeRegistry({})
    engine = FakeEngine([
        workload(name="off", labels={"dockwarden.enable": "false"}),
        workload(name="pinned", image=f"nginx@{D1}"),
        workload(name="local", repo_digests=()),
    ])
    checker = Checker(engine, registry, label_enable=False, default_policy="approve")
    report = await checker.check()
    assert [r.reason for r in report.results] == [
        SkipReason.LOCAL_IMAGE, SkipReason.DISABLED, SkipReason.PINNED_DIGEST,
    ]
    assert registry.batches == 0


def test_service_spec_digest_becomes_its_local_digest_and_the_tag_is_checked() -> None:
    service = {
        "ID": "svc1",
        "Spec": {
            "Name": "web",
            "Labels": {"dockwarden.policy": "notify"},
            "TaskTemplate": {"ContainerSpec": {"Image": f"127.0.0.1:5000/app:v1@{D1}"}},
        },
    }
    w = service_workload(service)
    assert w is not None
    assert (w.kind, w.name, w.image, w.repo_digests) == (
        "service", "web", "127.0.0.1:5000/app:v1", (f"127.0.0.1:5000/app@{D1}",),
    )
    p = plan(w)
    assert p.lookup == parse_reference("127.0.0.1:5000/app:v1")
    assert p.local == (D1,)
    assert p.policy == "notify"


def test_service_pinned_by_digest_alone_stays_pinned() -> None:
    service = {"ID": "s", "Spec": {"Name": "s", "TaskTemplate": {
        "ContainerSpec": {"Image": f"nginx@{D1}"}}}}
    w = service_workload(service)
    assert w is not None and w.image == f"nginx@{D1}"
    result = plan(w).result
    assert result is not None and result.reason is SkipReason.PINNED_DIGEST
    assert split_digest("nginx:1") == ("nginx:1", None)


async def test_swarm_task_containers_are_replaced_by_their_service() -> None:
    task = workload(name="web.1.abc", labels={"com.docker.swarm.service.id": "svc1"},
                    image=f"nginx:1.25@{D1}")
    service = Workload(name="web", id="svc1", image="nginx:1.25", image_id="",
                       repo_digests=(f"nginx@{D1}",), kind="service")
    checker = Checker(FakeEngine([task], [service]), FakeRegistry({"nginx:1.25": D1}),
                      label_enable=False, default_policy="approve")
    report = await checker.check()
    assert [(r.container, r.kind, r.status) for r in report.results] == [
        ("web", "service", CheckStatus.UP_TO_DATE)
    ]


def test_container_name_is_its_own_name_not_a_link_alias() -> None:
    from bot.engines.workloads import container_name

    assert container_name(["/web/db", "/db"], "c" * 64) == "db"
    assert container_name(["/solo"], "c" * 64) == "solo"
    assert container_name([], "c" * 64) == "c" * 12
