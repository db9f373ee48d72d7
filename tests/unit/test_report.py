"""The check table, a pass's outcome line, the progress line and the doctor's findings."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from bot.config.settings import load_settings
from bot.doctor.checks import chat_findings, database_finding
from bot.domain.model import (
    CheckError,
    CheckReport,
    CheckResult,
    CheckStatus,
    SkipReason,
    short_digest,
)
from bot.entrypoints.report import detail, familiar_image, pass_line, progress, render_table

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def _report(*results: CheckResult) -> CheckReport:
    return CheckReport(checked_at=datetime(2026, 1, 1, tzinfo=UTC), results=results)


def test_table_has_aligned_columns_one_row_per_container_and_a_summary() -> None:
    report = _report(
        CheckResult("web", "docker.io/library/nginx:1.25", CheckStatus.UP_TO_DATE, D1, D1),
        CheckResult("api-server", "ghcr.io/o/api:2", CheckStatus.UPDATE_AVAILABLE, D1, D2),
        CheckResult("db", "docker.io/library/postgres:16", CheckStatus.SKIPPED,
                    reason=SkipReason.DISABLED),
    )
    lines = render_table(report).splitlines()
    assert lines[0].split() == ["CONTAINER", "IMAGE", "STATUS", "DETAIL"]
    status_column = lines[0].index("STATUS")
    assert [line[status_column:].split("  ")[0].strip() for line in lines[1:4]] == [
        "up to date", "update available", "skipped",
    ]
    assert lines[1].startswith("web ") and "nginx:1.25" in lines[1]
    assert lines[-1] == "3 checked: 1 up to date, 1 update available, 1 skipped"


def test_empty_report_says_there_was_nothing_to_check() -> None:
    assert render_table(_report()) == "no running containers to check\n"


def test_details_say_what_each_status_means() -> None:
    update = CheckResult("a", "x", CheckStatus.UPDATE_AVAILABLE, D1, D2)
    assert detail(update) == f"{short_digest(D1)} -> {short_digest(D2)}"
    pinned = CheckResult("a", "x", CheckStatus.SKIPPED, reason=SkipReason.PINNED_DIGEST)
    assert detail(pinned) == "pinned by digest"
    error = CheckResult("a", "x", CheckStatus.ERROR, error=CheckError(
        "unsupported_challenge", "odd asks for 'negotiate'", "odd:5000", "negotiate"))
    assert detail(error) == "unsupported_challenge: odd asks for 'negotiate'"


def test_short_digest_and_familiar_image() -> None:
    assert short_digest(D1) == "sha256:111111111111"
    assert short_digest(None) == "-"
    assert familiar_image("docker.io/library/nginx:latest") == "nginx:latest"
    assert familiar_image("sha256:" + "a" * 64) == "sha256:" + "a" * 64


def test_chat_findings_never_show_a_token_and_flag_a_token_without_a_destination() -> None:
    secret = "123456:very-secret-token"
    settings = load_settings().model_copy(update={
        "telegram_bot_token": SecretStr(secret),
        "telegram_chat_ids": (),
        "discord_bot_token": SecretStr(secret),
        "discord_channel_id": 42,
    })
    findings = {f.subject: f for f in chat_findings(settings)}
    assert not findings["telegram"].ok
    assert "TELEGRAM_CHAT_IDS" in findings["telegram"].text
    assert findings["discord"].ok
    assert all(secret not in f.render() for f in findings.values())


def test_pass_line_says_all_up_to_date_or_what_is_not() -> None:
    up = CheckResult("web", "docker.io/library/nginx:1", CheckStatus.UP_TO_DATE, D1, D1)
    new = CheckResult("api", "ghcr.io/o/api:2", CheckStatus.UPDATE_AVAILABLE, D1, D2)
    skip = CheckResult("db", "postgres@" + D1, CheckStatus.SKIPPED, D1, None,
                       reason=SkipReason.PINNED_DIGEST)
    assert pass_line(_report(up, up)) == "all 2 up to date"
    assert pass_line(_report(up, skip)) == "all 1 up to date (1 skipped)"
    assert pass_line(_report(up, new)) == "2 checked: 1 up to date, 1 update available"
    assert pass_line(_report()) == "no running containers to check"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_label_can_change_while_the_work_goes_on() -> None:
    terminal = _Terminal()
    async with progress(terminal, "updating web: pulling", after=0) as status:
        await asyncio.sleep(0.05)
        status.label = "waiting for web to be healthy"
        await asyncio.sleep(0.25)
    shown = terminal.getvalue()
    assert "updating web: pulling" in shown and "waiting for web to be healthy" in shown
    assert shown.endswith("\r\033[K")  # the line is cleared for what follows


async def test_progress_stays_silent_when_not_on_a_terminal() -> None:
    piped = io.StringIO()
    async with progress(piped, "checking images", after=0):
        await asyncio.sleep(0.05)
    assert piped.getvalue() == ""


def test_doctor_says_whether_the_database_can_be_written(tmp_path: Path) -> None:
    fine = database_finding(str(tmp_path / "state.db"))
    assert fine.ok and "will be created" in fine.text
    (tmp_path / "state.db").write_bytes(b"")
    assert database_finding(str(tmp_path / "state.db")).ok
    missing = database_finding(str(tmp_path / "nowhere" / "state.db"))
    assert not missing.ok and "does not exist" in missing.text
    assert "DOCKWARDEN_DB" in missing.text
    directory = database_finding(str(tmp_path))
    assert not directory.ok and "is a directory" in directory.text
    under_a_file = database_finding(str(tmp_path / "state.db" / "x.db"))
    assert not under_a_file.ok
