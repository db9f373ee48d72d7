"""`doctor`'s findings from the settings alone: who may approve."""

from __future__ import annotations

from bot.config.settings import Settings
from bot.doctor.checks import chat_findings


def _subjects(**env: str) -> dict[str, str]:
    settings = Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]
    return {f.subject: f.render() for f in chat_findings(settings)}


def test_a_chat_where_nobody_may_approve_is_a_warning_not_an_ok() -> None:
    lines = _subjects(TELEGRAM_BOT_TOKEN="1:t", TELEGRAM_CHAT_IDS="-1",
                      DISCORD_BOT_TOKEN="d", DISCORD_CHANNEL_ID="5")
    assert lines["telegram admins"].startswith("WARN") and "TELEGRAM_ADMIN_IDS" in lines[
        "telegram admins"]
    assert lines["discord admins"].startswith("WARN") and "DISCORD_ADMIN_ROLE_IDS" in lines[
        "discord admins"]


def test_no_warning_once_someone_may_approve() -> None:
    lines = _subjects(TELEGRAM_BOT_TOKEN="1:t", TELEGRAM_CHAT_IDS="-1", TELEGRAM_ADMIN_IDS="7",
                      DISCORD_BOT_TOKEN="d", DISCORD_CHANNEL_ID="5", DISCORD_ADMIN_ROLE_IDS="9")
    assert "telegram admins" not in lines and "discord admins" not in lines


def test_the_console_alone_needs_no_admins() -> None:
    assert not any("admins" in subject for subject in _subjects())


def test_doctor_names_the_mirrors_docker_hub_images_are_checked_through_in_order() -> None:
    from bot.doctor.checks import mirrors_finding
    from bot.registry.mirrors import parse_mirror

    through = mirrors_finding([parse_mirror("http://127.0.0.1:5000"),
                               parse_mirror("mirror.corp.example")])
    none = mirrors_finding([])

    assert through.render() == (
        "ok    registry  docker.io mirrors: Docker Hub images are checked through "
        "http://127.0.0.1:5000, https://mirror.corp.example, then Docker Hub "
        "(DOCKWARDEN_REGISTRY_MIRRORS, else the engine's)")
    assert none.ok and none.text == "none: Docker Hub images are checked on Docker Hub itself"
