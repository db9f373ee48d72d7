"""What an update goes along and when it must not start: refusals, stale approvals, new tags,
claims, and the results' words (no engine)."""

from __future__ import annotations

import pytest

from bot.domain.model import Basis, UpdateOutcome, UpdateResult
from bot.domain.reference import parse_reference
from bot.engines.inspect import ContainerInspect, ContainerState
from bot.errors import NotUpdatable, StaleUpdate, UpdateInProgress
from bot.update.claims import Claims
from bot.update.rollback import RollbackOutcome, RollbackResult
from bot.update.target import (
    COMPOSE_FILES_LABEL,
    SWARM_TASK_LABEL,
    compose_note,
    container_reference,
    refuse_stale,
    with_tag,
)

IMAGE_ID = "sha256:" + "a" * 64
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def container(image: str = "registry.test/shop/web:1.2", **kw: object) -> ContainerInspect:
    """A running container created from `image` (override any view field with `kw`)."""
    fields: dict[str, object] = {
        "id": "c" * 64, "name": "web", "image_id": IMAGE_ID, "image": image,
        "state": ContainerState(running=True),
    }
    fields.update(kw)
    return ContainerInspect(**fields)  # type: ignore[arg-type]


def test_a_running_container_is_updated_along_the_reference_it_was_created_from() -> None:
    ref = container_reference(container(), "registry.test/shop/web:1.2")
    assert (ref.name, ref.tag) == ("registry.test/shop/web", "1.2")


@pytest.mark.parametrize(
    ("view", "said"),
    [
        (container(labels={SWARM_TASK_LABEL: "x"}), "is a Swarm task; update its service"),
        (container(auto_remove=True), "was started with --rm"),
        (container(state=ContainerState(running=False)), "is not running; start it first"),
        (container(image=IMAGE_ID), "was created from an image id"),
        (container(image="a" * 12), "was created from an image id"),
        (container(image=f"registry.test/shop/web@{D1}"), f"is pinned to {D1}"),
        (container(image="Not A Reference"), "was not created from an image reference"),
    ],
)
def test_a_container_that_cannot_be_recreated_safely_is_not_updatable(
    view: ContainerInspect, said: str
) -> None:
    with pytest.raises(NotUpdatable, match=said.replace("-", r"\-")):
        container_reference(view, view.image)


def test_an_approval_for_another_digest_is_stale_and_names_what_runs_now() -> None:
    ref = parse_reference("registry.test/shop/web:1.2")
    made_for = Basis(str(ref), D1)
    with pytest.raises(StaleUpdate) as raised:
        refuse_stale("web", ref, [D2], D2 + "x", made_for)
    assert raised.value.digest == D2
    assert "nothing was changed" in str(raised.value)


def test_an_approval_is_current_while_the_container_runs_what_it_was_found_for() -> None:
    ref = parse_reference("registry.test/shop/web:1.2")
    refuse_stale("web", ref, [D1], D2, Basis(str(ref), D1))
    refuse_stale("web", ref, [D2], D2, Basis(str(ref), D1))  # already on the approved digest
    refuse_stale("web", ref, [D2], None, None)  # no approval to hold it to


def test_a_newer_tag_replaces_only_the_tag_of_the_reference_as_written() -> None:
    ref = parse_reference("web:1.2")
    assert with_tag("web:1.2", ref, "1.3") == "web:1.3"
    assert with_tag("web", parse_reference("web"), "1.3") == "docker.io/library/web:1.3"


def test_after_a_move_to_a_newer_tag_the_compose_file_still_naming_the_old_one_is_said() -> None:
    view = container(image="web:1.2", labels={COMPOSE_FILES_LABEL: "/srv/shop/compose.yaml"})
    done = UpdateResult.updated("web", D1, D2, "web now runs web:1.3")
    noted = compose_note(done, view, parse_reference("web:1.3"))
    assert noted.message.endswith(
        "; /srv/shop/compose.yaml still names 1.2: change it to 1.3, or the next "
        "`docker compose up` goes back to the old version"
    )
    failed = UpdateResult.failed("web", "no", D1, D2)
    assert compose_note(failed, view, parse_reference("web:1.3")) is failed


def test_a_claimed_container_cannot_be_changed_twice_until_its_change_ends() -> None:
    claims = Claims()
    with claims.hold("web") as claim:
        claim("c" * 64)
        with pytest.raises(UpdateInProgress):
            with claims.hold("web"):
                pass
        with pytest.raises(UpdateInProgress):
            with claims.hold("c" * 12):  # an id prefix names the same container
                pass
        assert "web" in claims
    assert "web" not in claims
    with claims.hold("web"):
        pass


def test_results_of_every_outcome_say_what_was_left_as_it_was() -> None:
    assert UpdateResult.untouched("web", "could not pull", D1, D2, note="; x") == UpdateResult(
        "web", UpdateOutcome.FAILED, D1, D2, "could not pull; nothing was changed; x"
    )
    up = UpdateResult.up_to_date("web", D1, D2, "service web", "web:1.2")
    assert up.outcome is UpdateOutcome.UP_TO_DATE
    assert up.message == "service web already runs web:1.2 at sha256:222222222222; nothing was " \
        "changed"
    assert RollbackResult.untouched("web", D2, "refused") == RollbackResult(
        "web", RollbackOutcome.FAILED, D2, D2, "refused; nothing was changed"
    )
    assert RollbackResult.nothing("web", "none").as_json() == {
        "container": "web", "host": "local", "outcome": "nothing_to_roll_back",
        "old_digest": None, "new_digest": None, "message": "none",
    }


def test_update_and_rollback_results_share_one_json_document() -> None:
    update = UpdateResult.rolled_back("web", D1, D2, "undone").as_json()
    rollback = RollbackResult.rolled_back("web", D1, D2, "undone").as_json()
    assert update == rollback == {
        "container": "web", "host": "local", "outcome": "rolled_back", "old_digest": D1,
        "new_digest": D2, "message": "undone",
    }
