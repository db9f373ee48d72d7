"""The engine port's error context: what the caller was doing, then the engine's words."""

from __future__ import annotations

import pytest

from bot.engines.port import doing, require_image
from bot.errors import ContainerNotFound, EngineError, EngineUnavailable
from tests.unit.fake_engine import FakeEngine


def test_an_engine_refusal_says_what_was_being_done() -> None:
    with pytest.raises(EngineError) as caught, doing("starting the new container"):
        raise EngineError("port is already allocated")
    assert str(caught.value) == "starting the new container: port is already allocated"


def test_a_lost_engine_stays_unavailable_with_the_context() -> None:
    with pytest.raises(EngineUnavailable, match="^renaming the old container: gone$"), \
            doing("renaming the old container"):
        raise EngineUnavailable("gone")


def test_errors_that_carry_their_own_context_pass_unchanged() -> None:
    with pytest.raises(ContainerNotFound) as caught, doing("inspecting"):
        raise ContainerNotFound("web")
    assert caught.value.name == "web" and str(caught.value) == "no container named 'web'"


async def test_a_missing_image_is_an_engine_error_naming_it() -> None:
    with pytest.raises(EngineError, match="^inspecting an image: no such image: nope:1$"):
        await require_image(FakeEngine(), "nope:1", "inspecting an image")
