"""Settings: names from DESIGN.md, defaults, validation into a ConfigError naming the setting."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DOCKWARDEN_SCHEDULE", "TELEGRAM_CHAT_IDS", "TELEGRAM_ADMIN_IDS",
                 "DOCKWARDEN_INSECURE_REGISTRIES", "DOCKWARDEN_DEFAULT_POLICY",
                 "TELEGRAM_BOT_TOKEN", "DOCKWARDEN_DB", "TELEGRAM_API_BASE_URL",
                 "DOCKWARDEN_REGISTRY_CONCURRENCY", "DOCKWARDEN_REMOVE_OLD_IMAGES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_design_card() -> None:
    settings = load_settings()
    assert settings.db == "dockwarden.db"
    assert settings.schedule == "0 */6 * * *"
    assert settings.label_enable is False
    assert settings.default_policy == "approve"
    assert settings.insecure_registries == ()
    assert settings.registry_concurrency == 64
    assert settings.remove_old_images is False
    assert settings.telegram_api_base_url == "https://api.telegram.org"
    assert settings.discord_api_base_url == "https://discord.com/api/v10"


def test_comma_separated_ids_and_hosts_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "-100123, 42,")
    monkeypatch.setenv("DOCKWARDEN_INSECURE_REGISTRIES", "reg.lan:5000, other.lan")
    settings = load_settings()
    assert settings.telegram_chat_ids == (-100123, 42)
    assert settings.insecure_registries == ("reg.lan:5000", "other.lan")


def test_env_file_is_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(".env", "w") as fh:
        fh.write("DOCKWARDEN_DB=/data/state.db\nTELEGRAM_ADMIN_IDS=7\n")
    settings = load_settings()
    assert settings.db == "/data/state.db"
    assert settings.telegram_admin_ids == (7,)


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("DOCKWARDEN_SCHEDULE", "every day", "DOCKWARDEN_SCHEDULE"),
        ("TELEGRAM_ADMIN_IDS", "alice", "TELEGRAM_ADMIN_IDS"),
        ("DOCKWARDEN_DEFAULT_POLICY", "yolo", "DOCKWARDEN_DEFAULT_POLICY"),
    ],
)
def test_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_token_is_never_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:very-secret-token")
    settings = load_settings()
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in str(settings.model_dump())
