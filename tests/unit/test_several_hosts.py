"""Several Docker hosts on in-memory engines: keys, per-host updates, journals, rollbacks,
alerts, /status and the chat commands that take a name (no Docker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.access import Authorizer
from bot.chat.messages import Command, Sender
from bot.chat.replies import status_text
from bot.chat.router import CommandRouter
from bot.check.checker import Checker
from bot.config.settings import load_settings
from bot.domain.model import (
    CheckReport,
    CheckResult,
    CheckStatus,
    Policy,
    UpdateOutcome,
    Workload,
)
from bot.domain.reference import ImageRef
from bot.domain.targets import HostScope, container_key, resolve_key, split_key
from bot.entrypoints.bootstrap import build_core
from bot.errors import (
    AmbiguousTarget,
    ContainerNotFound,
    EngineUnavailable,
    HostNotAnswering,
    UnknownHost,
    UsageError,
)
from bot.store.db import Store
from bot.store.meta import LastPass
from bot.update.hosts import HostRollbacks, HostUpdaters
from bot.update.updater import Updater
from bot.usecases.alerting import Alerter
from bot.usecases.delivery import Notifier
from bot.usecases.update_service import UpdateService
from tests.unit.fake_engine import FakeEngine
from tests.unit.fakes import FakeAdapter

REPO = "registry.test/shop/web"
OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64
ADMIN = Sender("telegram", 1, "alice")

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
names = st.builds(lambda first, rest: first + rest, st.sampled_from(ALNUM),
                  st.text(alphabet=ALNUM + "._-", max_size=20))


class Registry:
    """Every repository's current digest is NEW."""

    async def remote_digest(self, ref: ImageRef) -> str:
        return NEW


def _engine() -> FakeEngine:
    engine = FakeEngine()
    engine.add_image(f"{REPO}:1", digest=OLD)
    engine.publish(REPO, NEW)
    return engine


def _updaters(store: Store, **engines: FakeEngine) -> HostUpdaters:
    several = len(engines) > 1
    return HostUpdaters({
        host: Updater(engine, Registry(), store, health_timeout=5, grace_period=0,  # type: ignore[arg-type]
                      rollback_keep=timedelta(days=1), scope=HostScope(host, several))
        for host, engine in engines.items()
    })


# -- keys ----------------------------------------------------------------------------------------


@given(host=names, name=names)
def test_a_key_splits_back_into_its_host_and_name(host: str, name: str) -> None:
    assert split_key(container_key(host, name, several=True)) == (host, name)
    assert split_key(container_key(host, name, several=False)) == (None, name)
    scope = HostScope(host, several=True)
    assert scope.name(scope.key(name)) == name and scope.owns(scope.key(name))
    assert not HostScope(host + "x", several=True).owns(scope.key(name))


@given(name=names)
def test_one_host_keys_are_bare_names_and_every_bare_key_is_its_own(name: str) -> None:
    scope = HostScope()
    assert scope.key(name) == name and scope.owns(name) and scope.name(name) == name
    assert resolve_key(name, {name, f"a/{name}"}) == name


def test_a_bare_name_resolves_to_the_one_host_key_that_has_it_and_names_both_when_two_do() -> None:
    assert resolve_key("web", {"a/web", "b/db"}) == "a/web"
    assert resolve_key("b/web", {"a/web"}) == "b/web"  # said with its host: taken as it is
    assert resolve_key("gone", {"a/web"}) == "gone"
    with pytest.raises(AmbiguousTarget) as refused:
        resolve_key("web", {"a/web", "b/web"})
    assert refused.value.candidates == ("a/web", "b/web")


# -- updates on the container's own host ---------------------------------------------------------


async def test_an_update_runs_on_its_own_host_and_is_journalled_and_recorded_under_its_key(
    store: Store
) -> None:
    a, b = _engine(), _engine()
    on_a, on_b = a.run("web", f"{REPO}:1"), b.run("web", f"{REPO}:1")
    updaters = _updaters(store, a=a, b=b)

    result = await updaters.update("b/web", expected_digest=NEW)

    assert (result.outcome, result.container, result.host) == (UpdateOutcome.UPDATED, "b/web", "b")
    assert a.named("web") is on_a and not any(call[0] == "pull" for call in a.calls)
    new = b.named("web")
    assert new is not None and new.id != on_b.id
    assert [e.container for e in store.history("b/web")] == ["b/web"]
    assert store.history("web") == [] and store.journal_open() == []
    rollbacks = HostRollbacks(updaters)
    plan = await rollbacks.plan("b/web")
    assert plan is not None and plan.container == "b/web"
    assert await rollbacks.plan("a/web") is None


async def test_a_bare_key_or_an_unknown_host_never_reaches_an_engine(store: Store) -> None:
    updaters = _updaters(store, a=_engine(), b=_engine())
    with pytest.raises(ContainerNotFound):
        updaters.pick("web")
    with pytest.raises(UnknownHost, match="the hosts are a, b"):
        await updaters.update("c/web")


async def test_with_one_host_keys_stay_bare_and_its_own_name_may_be_given(store: Store) -> None:
    engine = _engine()
    engine.run("web", f"{REPO}:1")
    updaters = _updaters(store, nas=engine)
    assert await updaters.resolve("web") == "web"
    assert await updaters.resolve("nas/web") == "web"
    with pytest.raises(UnknownHost):
        await updaters.resolve("vps/web")
    result = await updaters.update("web", expected_digest=NEW)
    assert (result.container, result.host) == ("web", "nas")


async def test_each_host_settles_only_its_own_interrupted_journals_on_its_own_engine(
    store: Store
) -> None:
    a, b = _engine(), _engine()
    a.run("web", f"{REPO}:1")
    b.run("web", f"{REPO}:1")
    journal = {"name": "web", "old_id": "gone", "aside": "web-old", "expires": 0,
               "owner": {"host": "elsewhere", "pid": 1}}
    store.journal_begin("b/web", "stop", journal)
    updaters = _updaters(store, a=a, b=b)

    settled_a = await updaters.updaters["a"].reconcile()
    settled = await updaters.reconcile()

    assert settled_a == [] and settled == ["b/web"]
    assert store.journal_open() == []
    assert [e.action for e in store.history("b/web")] == ["reconcile"]


# -- alerts and /status --------------------------------------------------------------------------


def _result(key: str, host: str, status: CheckStatus = CheckStatus.UP_TO_DATE) -> CheckResult:
    return CheckResult(container=key, image=f"{REPO}:1", status=status, local_digest=OLD,
                       remote_digest=OLD, host=host)


def _report(results: tuple[CheckResult, ...], hosts: tuple[str, ...],
            unreachable: dict[str, str]) -> CheckReport:
    return CheckReport(checked_at=datetime.now(UTC), results=results, hosts=hosts,
                       unreachable=unreachable)


def test_a_host_that_does_not_answer_is_said_once_and_its_recovery_once(store: Store) -> None:
    alerter = Alerter(store)
    down = _report((_result("a/web", "a"),), ("a",), {"b": "no Docker engine answers at b"})
    up = _report((_result("a/web", "a"), _result("b/web", "b")), ("a", "b"), {})

    first, again = alerter.observe(down).alerts, alerter.observe(down).alerts
    back, later = alerter.observe(up).alerts, alerter.observe(up).alerts

    assert [(x.kind.value, x.extra.get("host")) for x in first] == [("engine_unreachable", "b")]
    assert "Docker host b does not answer" in first[0].title
    assert "other hosts are checked" in first[0].text
    assert again == () and later == ()
    assert [(x.kind.value, x.extra.get("host")) for x in back] == [("recovered", "b")]


def test_status_shows_each_hosts_counts_and_the_host_that_was_not_checked() -> None:
    counts = dict.fromkeys(CheckStatus, 0)
    last = LastPass(
        checked_at=datetime(2026, 12, 1, tzinfo=UTC),
        counts={**counts, CheckStatus.UP_TO_DATE: 2, CheckStatus.UPDATE_AVAILABLE: 1},
        hosts={"a": {**counts, CheckStatus.UP_TO_DATE: 2},
               "b": {**counts, CheckStatus.UPDATE_AVAILABLE: 1}},
        unreachable={"c": "no Docker engine answers at tcp://c:2375"},
    )
    text = status_text(engine_label="3 hosts", schedule="", last_pass=last, next_pass=None,
                       pending=[], undelivered=0)
    assert "  a: 2 containers, 0 with updates, 0 errors" in text
    assert "  b: 1 containers, 1 with updates, 0 errors" in text
    assert "  c: not checked, the engine did not answer: no Docker engine answers" in text


def test_the_last_pass_keeps_each_hosts_counts_in_the_store(store: Store) -> None:
    counts = dict.fromkeys(CheckStatus, 1)
    store.set_last_pass(LastPass(checked_at=datetime(2026, 12, 1, tzinfo=UTC), counts=counts,
                                 hosts={"a": counts}, unreachable={"b": "away"}))
    kept = store.last_pass()
    assert kept is not None and kept.hosts == {"a": counts} and kept.unreachable == {"b": "away"}


# -- chat commands that take a name --------------------------------------------------------------


def _router(store: Store, updaters: HostUpdaters) -> CommandRouter:
    authorizer = Authorizer(telegram_admin_ids=frozenset({1}))
    updates = UpdateService(store, updaters, Notifier([], store))

    async def run_pass(names: object) -> object:
        raise AssertionError("no pass in these tests")

    return CommandRouter(store, authorizer, run_pass, updates,  # type: ignore[arg-type]
                         rollbacks=HostRollbacks(updaters), resolve=updaters.resolve)


async def test_approve_and_pull_by_bare_name_reach_the_one_host_that_has_it(store: Store) -> None:
    a, b = _engine(), _engine()
    a.run("db", f"{REPO}:1")
    on_b = b.run("web", f"{REPO}:1")
    router = _router(store, _updaters(store, a=a, b=b))
    update, _ = store.add_update("b/web", f"{REPO}:1", OLD, NEW, "approve")

    approved = await router.dispatch(Command("approve", ("web",), ADMIN))
    assert "b/web" in approved.text
    assert store.get_update(update.id).state.value == "applied"  # type: ignore[union-attr]
    new = b.named("web")
    assert new is not None and new.id != on_b.id
    pulled = await router.dispatch(Command("pull", ("db",), ADMIN))
    assert "a/db" in pulled.text
    assert [e.container for e in store.history("a/db")][-1:] == ["a/db"]


async def test_a_name_on_two_hosts_is_refused_with_both_candidates_and_nothing_changes(
    store: Store
) -> None:
    a, b = _engine(), _engine()
    on_a, on_b = a.run("web", f"{REPO}:1"), b.run("web", f"{REPO}:1")
    router = _router(store, _updaters(store, a=a, b=b))
    store.add_update("a/web", f"{REPO}:1", OLD, NEW, "approve")
    store.add_update("b/web", f"{REPO}:1", OLD, NEW, "approve")

    for command in ("pull", "approve", "rollback", "snooze", "history"):
        reply = await router.dispatch(Command(command, ("web",), ADMIN))
        assert "a/web, b/web" in reply.text, (command, reply.text)
    assert a.named("web") is on_a and b.named("web") is on_b
    snoozed = await router.dispatch(Command("snooze", ("b/web", "1h"), ADMIN))
    assert "b/web" in snoozed.text
    assert store.snoozed_until("b/web", datetime.now(UTC)) is not None
    assert store.snoozed_until("a/web", datetime.now(UTC)) is None


# -- listing several hosts -----------------------------------------------------------------------


class Listing:
    """A host's workloads, or the engine that does not answer."""

    def __init__(self, *names: str, away: bool = False) -> None:
        self.names, self.away = names, away

    def list_workloads(self, *, stopped: bool = False) -> list[Workload]:
        if self.away:
            raise EngineUnavailable("no Docker engine answers at tcp://b:2375")
        return [Workload(name=n, id=n * 8, image="busybox:1", image_id="sha256:" + "0" * 64,
                         repo_digests=()) for n in self.names]


async def test_a_host_away_leaves_the_others_listed_and_a_name_there_is_said_to_be_away(
    store: Store
) -> None:
    checker = Checker({"a": Listing("web"), "b": Listing(away=True)}, Registry(),  # type: ignore[arg-type]
                      label_enable=False, default_policy=Policy.APPROVE)

    report = await checker.check()
    assert [(r.container, r.host) for r in report.results] == [("a/web", "a")]
    assert report.hosts == ("a",) and "tcp://b:2375" in report.unreachable["b"]
    with pytest.raises(HostNotAnswering, match="b/web was not checked: host b did not answer"):
        await checker.check(["b/web"])

    adapter = FakeAdapter()
    core = build_core(load_settings(_env_file=None), store, checker,
                      _updaters(store, a=_engine()), [adapter])
    with pytest.raises(HostNotAnswering):
        await core.runner.run(["b/web"])
    assert adapter.alerts == []  # no engine-wide alert: host b is said by the full passes
    await core.runner.run()
    assert [a.extra.get("host") for a in adapter.alerts] == ["b"]


async def test_one_host_that_does_not_answer_still_stops_the_pass() -> None:
    checker = Checker(Listing(away=True), Registry(),  # type: ignore[arg-type]
                      label_enable=False, default_policy=Policy.APPROVE)
    with pytest.raises(EngineUnavailable):
        await checker.check()
    with pytest.raises(EngineUnavailable):
        await checker.workloads()


async def test_a_bare_name_is_not_guessed_onto_one_host_while_another_does_not_answer(
    store: Store
) -> None:
    a, b = _engine(), _engine()
    a.run("web", f"{REPO}:1")
    b.refuse("inspect_container", "engine away")  # a plain EngineError: the host is away
    updaters = _updaters(store, a=a, b=b)
    with pytest.raises(UsageError, match="host b did not answer and may have it too; say a/web"):
        await updaters.resolve("web")
    assert await updaters.resolve("a/web") == "a/web"
