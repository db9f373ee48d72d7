"""Settings: the only reader of the environment (and of a `.env` file)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

Policy = Literal["notify", "approve", "auto"]

IdList = Annotated[tuple[int, ...], NoDecode]
HostList = Annotated[tuple[str, ...], NoDecode]


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


class Settings(BaseSettings):
    """Every setting DockWarden reads; see .env.example for what each means."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    docker_host: str | None = Field(default=None, validation_alias="DOCKER_HOST")
    docker_config: str | None = Field(default=None, validation_alias="DOCKER_CONFIG")

    db: str = Field(default="dockwarden.db", validation_alias="DOCKWARDEN_DB")
    schedule: str = Field(default="0 */6 * * *", validation_alias="DOCKWARDEN_SCHEDULE")
    label_enable: bool = Field(default=False, validation_alias="DOCKWARDEN_LABEL_ENABLE")
    default_policy: Policy = Field(default="approve", validation_alias="DOCKWARDEN_DEFAULT_POLICY")
    insecure_registries: HostList = Field(
        default=(), validation_alias="DOCKWARDEN_INSECURE_REGISTRIES"
    )
    health_timeout: float = Field(default=60.0, validation_alias="DOCKWARDEN_HEALTH_TIMEOUT")
    grace_period: float = Field(default=5.0, validation_alias="DOCKWARDEN_GRACE_PERIOD")
    remove_old_images: bool = Field(default=False, validation_alias="DOCKWARDEN_REMOVE_OLD_IMAGES")
    registry_timeout: float = Field(default=10.0, validation_alias="DOCKWARDEN_REGISTRY_TIMEOUT")
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

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        # The shape only: the full check needs APScheduler, whose import would slow every
        # `dockwarden check`; `dockwarden run` checks it fully before it starts anything.
        if len(value.split()) != 5:
            raise ValueError(f"not a 5-field cron expression: {value!r}")
        return value

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


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings once; a bad value becomes a ConfigError naming it."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
