"""Fixtures for the end-to-end tests: the chat stand-ins and settings pointing at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config.settings import Settings

# ---- Telegram ------------------------------------------------------------------------------
from tests.standins.telegram import TelegramStandin  # noqa: E402

TELEGRAM_ALERT_CHATS = (-1001, -1002)
TELEGRAM_ADMIN = 501
TELEGRAM_OTHER = 502


@pytest.fixture
async def telegram_standin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TelegramStandin]:
    """A Bot API stand-in on a free loopback port."""
    # PTB 22 warns about RetryAfter's future type unless opted in; tests turn warnings into errors
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    standin = TelegramStandin()
    await standin.start()
    yield standin
    await standin.close()


@pytest.fixture
def telegram_settings(telegram_standin: TelegramStandin, tmp_path: object) -> Settings:
    """Settings for a Telegram bot talking to the stand-in, alert chats and one admin."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_BOT_TOKEN=telegram_standin.token,
        TELEGRAM_CHAT_IDS=",".join(str(c) for c in TELEGRAM_ALERT_CHATS),
        TELEGRAM_ADMIN_IDS=str(TELEGRAM_ADMIN),
        TELEGRAM_API_BASE_URL=telegram_standin.url,
        DOCKWARDEN_DB=str(tmp_path) + "/dockwarden.db",
    )

# ---- end Telegram --------------------------------------------------------------------------
