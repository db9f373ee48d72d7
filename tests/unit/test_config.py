"""Settings: the documented names, defaults, validation into a ConfigError naming the setting."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bot.config.settings import Settings, load_settings
from bot.errors import ConfigError

SECRETS = [
    field.validation_alias
    for field in Settings.model_fields.values()
    if "SecretStr" in str(field.annotation)
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(("DOCKWARDEN_", "TELEGRAM_", "DISCORD_", "DOCKER_HOST")):
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


@pytest.mark.parametrize(
    "name", ["DOCKWARDEN_GRACE_PERIOD", "DOCKWARDEN_HEALTH_TIMEOUT", "DOCKWARDEN_REGISTRY_TIMEOUT"]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e300"])
def test_timing_settings_refuse_nan_inf_zero_and_negative_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings()
    assert "above 0" in str(caught.value)


def test_every_float_setting_is_a_bounded_number_of_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A float setting added later gets the same guard, or this test names it.
    floats = [
        f.validation_alias for f in Settings.model_fields.values() if f.annotation is float
    ]
    for name in floats:
        monkeypatch.setenv(str(name), "nan")
        with pytest.raises(ConfigError, match=str(name)):
            load_settings()
        monkeypatch.delenv(str(name))
    monkeypatch.setenv("DOCKWARDEN_GRACE_PERIOD", "0.5")
    assert load_settings().grace_period == 0.5


def test_unknown_log_level_is_refused_and_known_ones_taken_in_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKWARDEN_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="DOCKWARDEN_LOG_LEVEL: unknown log level 'LOUD'"):
        load_settings()
    monkeypatch.setenv("DOCKWARDEN_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


@pytest.mark.parametrize("schedule", ["a b c d e", "99 * * * *", "0 0 31 2 *", "@yearly"])
def test_schedule_is_validated_fully_when_settings_load(
    monkeypatch: pytest.MonkeyPatch, schedule: str
) -> None:
    monkeypatch.setenv("DOCKWARDEN_SCHEDULE", schedule)
    with pytest.raises(ConfigError, match="DOCKWARDEN_SCHEDULE"):
        load_settings()


@pytest.mark.parametrize("schedule", ["@hourly", "@daily", "@weekly", "*/15 8-18 * * mon-fri"])
def test_schedule_takes_macros_and_names(monkeypatch: pytest.MonkeyPatch, schedule: str) -> None:
    monkeypatch.setenv("DOCKWARDEN_SCHEDULE", schedule)
    assert load_settings().schedule == schedule


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOCKWARDEN_SCHEDULE", "@daly"),
        ("DOCKWARDEN_SCHEDULE", "every day"),
        ("DOCKWARDEN_HTTP_LISTEN", "nowhere"),
        ("DOCKWARDEN_GRACE_PERIOD", "nan"),
        ("TELEGRAM_ADMIN_IDS", "alice"),
        ("DOCKWARDEN_TZ", "Mars/Olympus"),
        ("DOCKER_HOST", "htp:/oops"),
    ],
)
def test_messages_carry_no_library_prefix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{name}: " in message
    assert "Value error" not in message and "Assertion failed" not in message


def test_time_zone_is_an_iana_name_utc_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().tz == "UTC"
    monkeypatch.setenv("DOCKWARDEN_TZ", "Europe/Berlin")
    assert load_settings().tz == "Europe/Berlin"
    monkeypatch.setenv("DOCKWARDEN_TZ", "Mars/Olympus")
    with pytest.raises(ConfigError, match="DOCKWARDEN_TZ: unknown time zone 'Mars/Olympus'"):
        load_settings()


def test_malformed_docker_host_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "htp:/oops")
    with pytest.raises(ConfigError, match="DOCKER_HOST: not a Docker engine address"):
        load_settings()
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert load_settings().docker_host == "tcp://10.0.0.5:2375"


def test_ssh_docker_host_without_paramiko_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "paramiko", None)  # as if not installed
    monkeypatch.setenv("DOCKER_HOST", "ssh://admin@engine.lan")
    with pytest.raises(ConfigError, match=r"DOCKER_HOST: .*pip install 'dockwarden\[ssh\]'"):
        load_settings()


def test_env_file_named_by_dockwarden_env_file_is_read_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "conf" / "dockwarden.env"
    env_file.parent.mkdir()
    env_file.write_text("DOCKWARDEN_DB=/data/named.db\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("DOCKWARDEN_DB=/data/local.db\n")
    monkeypatch.chdir(elsewhere)
    assert load_settings().db == "/data/local.db"
    monkeypatch.setenv("DOCKWARDEN_ENV_FILE", str(env_file))
    assert load_settings().db == "/data/named.db"
    other = tmp_path / "other.env"
    other.write_text("DOCKWARDEN_DB=/data/given.db\n")
    assert load_settings(other).db == "/data/given.db"  # --env-file wins


def test_env_file_that_was_named_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="--env-file: no such file"):
        load_settings(tmp_path / "missing.env")
    monkeypatch.setenv("DOCKWARDEN_ENV_FILE", str(tmp_path / "gone.env"))
    with pytest.raises(ConfigError, match="DOCKWARDEN_ENV_FILE: no such file"):
        load_settings()


def test_every_secret_has_a_file_variant() -> None:
    assert {"TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "DISCORD_WEBHOOK_URL",
            "DOCKWARDEN_NOTIFY_URLS"} <= set(SECRETS)


@pytest.mark.parametrize("name", SECRETS)
def test_secret_is_read_from_the_file_named_by_its_file_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    secret = tmp_path / "secret"
    value = "https://discord.com/api/webhooks/1/tok" if "URL" in name else "123:from-a-file"
    secret.write_text(value + "\n")
    monkeypatch.setenv(f"{name}_FILE", str(secret))
    settings = load_settings()
    field = next(k for k, f in Settings.model_fields.items() if f.validation_alias == name)
    assert getattr(settings, field).get_secret_value() == value


def test_secret_file_variable_works_from_the_env_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "token"
    secret.write_text("123:in-env-file")
    Path(".env").write_text(f"TELEGRAM_BOT_TOKEN_FILE={secret}\n")
    token = load_settings().telegram_bot_token
    assert token is not None and token.get_secret_value() == "123:in-env-file"


def test_missing_or_doubled_secret_file_is_a_clear_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN_FILE", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN_FILE: cannot read .*nope"):
        load_settings()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_FILE", str(empty))
    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN_FILE: .* is empty"):
        load_settings()
    full = tmp_path / "full"
    full.write_text("file-secret-value")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_FILE", str(full))
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "env-secret-value")
    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN and DISCORD_BOT_TOKEN_FILE") as e:
        load_settings()
    assert "secret-value" not in str(e.value)
