"""The container listing's decision whether an image's RepoDigests name a container's repository."""

from __future__ import annotations

from bot.engines import workloads
from bot.engines.workloads import _names_repository, repositories_named

DIGEST = "sha256:" + "a" * 64
MANY = tuple(f"registry.test:5000/app{i}@{DIGEST}" for i in range(200))


def test_a_repo_digest_of_the_containers_repository_names_it() -> None:
    assert _names_repository(MANY, "registry.test:5000/app7:latest")
    assert not _names_repository(MANY, "registry.test:5000/other:latest")
    assert not _names_repository(MANY, "docker.io/library/app7:latest")


def test_an_image_that_is_no_reference_needs_no_inspect() -> None:
    assert _names_repository((), "sha256:" + "b" * 64)


def test_entries_that_are_no_reference_are_passed_over() -> None:
    assert repositories_named(("not a reference", f"busybox@{DIGEST}")) == frozenset(
        {("docker.io", "library/busybox")}
    )


def test_the_names_of_an_image_are_parsed_once_however_many_containers_run_it() -> None:
    repositories_named.cache_clear()
    for i in range(1000):
        assert workloads._names_repository(MANY, f"registry.test:5000/app{i % 200}:latest")
    info = repositories_named.cache_info()
    assert (info.misses, info.hits) == (1, 999)
