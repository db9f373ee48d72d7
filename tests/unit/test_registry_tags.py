"""Tag listing rules that need no registry: where a Link may lead."""

from __future__ import annotations

import httpx
import pytest

from bot.errors import BadResponse
from bot.registry.tags import next_page

PAGE = httpx.URL("https://registry.example:5000/v2/app/tags/list?n=2")


def test_relative_link_is_joined_to_the_registry() -> None:
    assert next_page("registry.example:5000", PAGE, "/v2/app/tags/list?n=2&last=b") == (
        "https://registry.example:5000/v2/app/tags/list?n=2&last=b"
    )


@pytest.mark.parametrize("link", [
    "https://elsewhere.example/v2/app/tags/list?last=b",
    "http://registry.example:5000/v2/app/tags/list?last=b",
    "//registry.example:5001/v2/app/tags/list?last=b",
])
def test_link_to_another_origin_is_refused(link: str) -> None:
    with pytest.raises(BadResponse):
        next_page("registry.example:5000", PAGE, link)
