"""Settings: the only reader of the environment (and of a `.env` file)."""

from __future__ import annotations

import math
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.domain.durations import parse_duration
from bot.domain.model import Policy
from bot.engines.hosts import Host
from bot.errors import ConfigError

RETENTION_LIMIT = timedelta(days=3650)

IdList = Annotated[tuple[int, ...], NoDecode]
HostList = Annotated[tuple[str, ...], NoDecode]

MAX_SECONDS = 86_400.0  # a day: longer waits are mistakes, and huge ones overflow timers
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENV_FILE = ".env"  # read from the working directory unless --env-file or DOCKWARDEN_ENV_FILE


def _positive_seconds(value: float) -> float:
    # nan made the health gate spin, 0 turns timeouts off, inf never ends: none can work.
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise ValueError(f"must be a number of seconds above 0 and at most {MAX_SECONDS:.0f}, "
                         f"got {value}")
    return value


Seconds = Annotated[float, AfterValidator(_positive_seconds)]


def _split(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def split_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080`; `:8080` for every address) as (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 0.0.0.0:8080), got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


class SecretFiles(PydanticBaseSettingsSource):
    """`NAME_FILE=/run/secrets/x` for every secret setting NAME (Docker's secrets convention).

    Read from the environment or the env file; naming both NAME and NAME_FILE is an error, and
    so is a file that cannot be read. The file's content, stripped, is the value.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *sources: EnvSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self.sources = sources

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: __call__ reads every secret at once."""
        return None, field_name, False

    def _lookup(self, name: str) -> str | None:
        for source in self.sources:
            value = source.env_vars.get(name.lower())
            if value is not None and value.strip():
                return value.strip()
        return None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field in self.settings_cls.model_fields.values():
            alias = field.validation_alias
            if not _is_secret(field) or not isinstance(alias, str):
                continue
            path = self._lookup(f"{alias}_FILE")
            if path is None:
                continue
            if self._lookup(alias) is not None:
                raise ConfigError(f"{alias} and {alias}_FILE are both set; keep one")
            try:
                secret = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or type(exc).__name__
                raise ConfigError(f"{alias}_FILE: cannot read {path}: {why}") from None
            if not secret:
                raise ConfigError(f"{alias}_FILE: {path} is empty")
            values[alias] = secret
        return values


class Settings(BaseSettings):
    """Every setting DockWarden reads; see .env.example for what each means."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment, then the env file, then NAME_FILE for secrets."""
        files = [s for s in (env_settings, dotenv_settings) if isinstance(s, EnvSettingsSource)]
        return (init_settings, env_settings, dotenv_settings,
                SecretFiles(settings_cls, *files), file_secret_settings)

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    docker_host: str | None = Field(default=None, validation_alias="DOCKER_HOST")
    docker_config: str | None = Field(default=None, validation_alias="DOCKER_CONFIG")
    # After DOCKER_HOST and DOCKER_CONFIG, which its validator reads (bot/engines/hosts.py).
    hosts: Annotated[tuple[Host, ...], NoDecode] = Field(
        default=None, validate_default=True, validation_alias="DOCKWARDEN_HOSTS"
    )

    db: str = Field(default="dockwarden.db", validation_alias="DOCKWARDEN_DB")
    history_retention: timedelta = Field(
        default=timedelta(days=90), validation_alias="DOCKWARDEN_HISTORY_RETENTION"
    )
    schedule: str = Field(default="0 */6 * * *", validation_alias="DOCKWARDEN_SCHEDULE")
    tz: str = Field(default="UTC", validation_alias="DOCKWARDEN_TZ")
    label_enable: bool = Field(default=False, validation_alias="DOCKWARDEN_LABEL_ENABLE")
    include_stopped: bool = Field(default=False, validation_alias="DOCKWARDEN_INCLUDE_STOPPED")
    default_policy: Policy = Field(
        default=Policy.APPROVE, validation_alias="DOCKWARDEN_DEFAULT_POLICY"
    )
    # Default tag rule (patch, minor, major) for containers without a dockwarden.semver label.
    semver: Literal["patch", "minor", "major"] | None = Field(
        default=None, validation_alias="DOCKWARDEN_SEMVER"
    )
    insecure_registries: HostList = Field(
        default=(), validation_alias="DOCKWARDEN_INSECURE_REGISTRIES"
    )
    # None: the engine's registry-mirrors (`docker info`); () with "none": no mirror at all.
    registry_mirrors: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None, validation_alias="DOCKWARDEN_REGISTRY_MIRRORS"
    )
    certs_dir: str = Field(default="/etc/docker/certs.d", validation_alias="DOCKWARDEN_CERTS_DIR")
    health_timeout: Seconds = Field(default=60.0, validation_alias="DOCKWARDEN_HEALTH_TIMEOUT")
    grace_period: Seconds = Field(default=5.0, validation_alias="DOCKWARDEN_GRACE_PERIOD")
    remove_old_images: bool = Field(default=False, validation_alias="DOCKWARDEN_REMOVE_OLD_IMAGES")
    # Safer automation (bot/update/rollback.py, bot/domain/policy.py).
    rollback_keep: timedelta = Field(
        default=timedelta(days=7), validation_alias="DOCKWARDEN_ROLLBACK_KEEP"
    )
    min_age: timedelta | None = Field(default=None, validation_alias="DOCKWARDEN_MIN_AGE")
    auto_window: str | None = Field(default=None, validation_alias="DOCKWARDEN_AUTO_WINDOW")
    # Hosts an approved digest goes to first; the others after the canaries' soak time.
    canary_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="DOCKWARDEN_CANARY_HOSTS"
    )
    canary_soak: timedelta = Field(
        default=timedelta(hours=1), validation_alias="DOCKWARDEN_CANARY_SOAK"
    )
    registry_timeout: Seconds = Field(default=10.0, validation_alias="DOCKWARDEN_REGISTRY_TIMEOUT")
    registry_pass_timeout: Seconds = Field(
        default=120.0, validation_alias="DOCKWARDEN_REGISTRY_PASS_TIMEOUT"
    )
    registry_concurrency: int = Field(
        default=64, ge=1, le=256, validation_alias="DOCKWARDEN_REGISTRY_CONCURRENCY"
    )
    log_level: str = Field(default="INFO", validation_alias="DOCKWARDEN_LOG_LEVEL")
    http_listen: str | None = Field(default=None, validation_alias="DOCKWARDEN_HTTP_LISTEN")

    telegram_bot_token: SecretStr | None = Field(
        default=None, validation_alias="TELEGRAM_BOT_TOKEN"
    )
    telegram_chat_ids: IdList = Field(default=(), validation_alias="TELEGRAM_CHAT_IDS")
    telegram_admin_ids: IdList = Field(default=(), validation_alias="TELEGRAM_ADMIN_IDS")
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org", validation_alias="TELEGRAM_API_BASE_URL"
    )

    discord_bot_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_BOT_TOKEN")
    discord_channel_id: int | None = Field(default=None, validation_alias="DISCORD_CHANNEL_ID")
    discord_guild_id: int | None = Field(default=None, validation_alias="DISCORD_GUILD_ID")
    discord_admin_ids: IdList = Field(default=(), validation_alias="DISCORD_ADMIN_IDS")
    discord_admin_role_ids: IdList = Field(default=(), validation_alias="DISCORD_ADMIN_ROLE_IDS")
    discord_webhook_url: SecretStr | None = Field(
        default=None, validation_alias="DISCORD_WEBHOOK_URL"
    )
    discord_api_base_url: str = Field(
        default="https://discord.com/api/v10", validation_alias="DISCORD_API_BASE_URL"
    )
    discord_gateway_url: str | None = Field(default=None, validation_alias="DISCORD_GATEWAY_URL")
    notify_urls: SecretStr | None = Field(default=None, validation_alias="DOCKWARDEN_NOTIFY_URLS")

    @field_validator("telegram_chat_ids", "telegram_admin_ids", "discord_admin_ids",
                     "discord_admin_role_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in _split(value))
        except ValueError as exc:
            raise ValueError(f"expected comma-separated numeric ids, got {value!r}") from exc

    @field_validator("insecure_registries", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> tuple[str, ...]:
        return tuple(_split(value))

    @field_validator("registry_mirrors", mode="before")
    @classmethod
    def _mirrors(cls, value: object) -> tuple[str, ...] | None:
        from bot.registry.mirrors import parse_mirror

        entries = _split(value)
        if not entries:
            return None  # unset or empty: the engine's own
        if [e.lower() for e in entries] == ["none"]:
            return ()
        return tuple(dict.fromkeys(parse_mirror(entry).url for entry in entries))

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        # Fully, for every command (APScheduler's trigger module adds a few ms once loaded).
        from datetime import UTC

        from bot.config.cron import cron_trigger

        cron_trigger(value, UTC)
        return value.strip()

    @field_validator("semver", mode="before")
    @classmethod
    def _semver(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return None if value in ("", "off") else value
        return value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = value.strip() or "UTC"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                             "Europe/Berlin or UTC") from None
        return name

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("docker_host")
    @classmethod
    def _engine_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        from bot.engines.hosts import check_engine_url

        try:
            check_engine_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("hosts", mode="before")
    @classmethod
    def _hosts_watched(cls, value: object, info: ValidationInfo) -> tuple[Host, ...]:
        from bot.engines.hosts import parse_hosts

        try:
            return parse_hosts(None if value is None else str(value),
                               docker_host=info.data.get("docker_host"),
                               docker_config=info.data.get("docker_config"))
        except ConfigError as exc:  # the location already names DOCKWARDEN_HOSTS
            raise ValueError(str(exc).removeprefix("DOCKWARDEN_HOSTS ")) from None

    @field_validator("history_retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value, minimum=timedelta(days=1), maximum=RETENTION_LIMIT)
        return value

    @field_validator("history_retention")
    @classmethod
    def _retention_bounds(cls, value: timedelta) -> timedelta:
        if not timedelta(days=1) <= value <= RETENTION_LIMIT:
            raise ValueError("must be between 1d and 3650d")
        return value

    @field_validator("rollback_keep", "canary_soak", mode="before")
    @classmethod
    def _zero_or_duration(cls, value: object) -> object:
        # 0: no keeping (old images go at once, as before); no soak (the other hosts follow
        # as soon as the canaries run the digest).
        if isinstance(value, str):
            if value.strip() == "0":
                return timedelta(0)
            return parse_duration(value, maximum=RETENTION_LIMIT)
        return value

    @field_validator("min_age", mode="before")
    @classmethod
    def _min_age(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip() in ("", "0"):
                return None
            from bot.domain.policy import parse_age

            return parse_age(value)
        return value

    @field_validator("canary_hosts", mode="before")
    @classmethod
    def _canaries(cls, value: object, info: ValidationInfo) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(_split(value)))
        watched = [host.name for host in info.data.get("hosts") or ()]
        unknown = [name for name in names if name not in watched]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not one of DOCKWARDEN_HOSTS "
                             f"({', '.join(watched) or 'none'})")
        return names

    @field_validator("auto_window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from datetime import UTC

        from bot.config.cron import cron_trigger

        cron_trigger(value, UTC)
        return value.strip()

    @field_validator("http_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        split_listen(value)
        return value.strip()

    @field_validator("notify_urls")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("telegram_api_base_url", "discord_api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


# pydantic's wording before our own message ("Value error, not a valid ...").
_LIBRARY_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def env_file_to_read(given: str | Path | None = None) -> tuple[Path, bool]:
    """The env file (--env-file, else DOCKWARDEN_ENV_FILE, else ./.env); must it exist?"""
    if given:
        return Path(given), True
    named = os.environ.get("DOCKWARDEN_ENV_FILE", "").strip()
    if named:
        return Path(named), True
    return Path(ENV_FILE), False


def load_settings(env_file: str | Path | None = None, **overrides: object) -> Settings:
    """Read and validate the settings once; a bad value becomes a ConfigError naming it.

    `env_file` (the CLI's --env-file) wins over DOCKWARDEN_ENV_FILE, which wins over a `.env`
    in the working directory; a file that was named must exist.
    """
    from pydantic import ValidationError

    if "_env_file" not in overrides:
        path, required = env_file_to_read(env_file)
        if required and not path.is_file():
            source = "--env-file" if env_file else "DOCKWARDEN_ENV_FILE"
            raise ConfigError(f"{source}: no such file: {path}")
        overrides["_env_file"] = path
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
            f"{_LIBRARY_PREFIX.sub('', err['msg'])}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
