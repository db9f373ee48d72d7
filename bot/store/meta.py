"""Small named values (table `meta`): the last pass's snapshot, when the next pass runs, and
the self-update hand-over record (bot/update/self_update.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.model import CheckStatus
from bot.store.connection import Database

_LAST_PASS = "last_pass"
_NEXT_PASS = "next_pass"


@dataclass(frozen=True)
class LastPass:
    """What the last check pass found: when, how many containers had each status, and which
    registries limited its rate (what they said)."""

    checked_at: datetime
    counts: Mapping[CheckStatus, int]
    rate_limited: Mapping[str, str] = field(default_factory=dict)
    # With several hosts: each host's counts, and the hosts that did not answer (why).
    hosts: Mapping[str, Mapping[CheckStatus, int]] = field(default_factory=dict)
    unreachable: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many containers the pass looked at."""
        return sum(self.counts.values())


class Meta:
    """The `meta` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        """A small stored value."""
        with self.db.reading() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set(self, key: str, value: str) -> None:
        """Store a small value."""
        with self.db.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def last_pass(self) -> LastPass | None:
        """The snapshot of the last check pass, if one ran."""
        raw = self.get(_LAST_PASS)
        if raw is None:
            return None
        data = json.loads(raw)
        return LastPass(
            checked_at=datetime.fromisoformat(data["checked_at"]),
            counts={CheckStatus(status): int(n) for status, n in data["counts"].items()},
            rate_limited={str(k): str(v) for k, v in data.get("rate_limited", {}).items()},
            hosts={
                str(host): {CheckStatus(status): int(n) for status, n in counts.items()}
                for host, counts in data.get("hosts", {}).items()
            },
            unreachable={str(k): str(v) for k, v in data.get("unreachable", {}).items()},
        )

    def next_pass(self) -> datetime | None:
        """When the next scheduled pass starts, as the scheduler last said."""
        raw = self.get(_NEXT_PASS)
        return None if raw is None else datetime.fromisoformat(raw)

    def set_next_pass(self, at: datetime) -> None:
        """Keep when the next scheduled pass starts (to the second, in the schedule's zone)."""
        self.set(_NEXT_PASS, at.isoformat(timespec="seconds"))

    def set_last_pass(self, last: LastPass) -> None:
        """Keep the snapshot of the pass that just ran (the JSON older versions wrote too)."""
        self.set(_LAST_PASS, json.dumps({
            "checked_at": last.checked_at.isoformat(timespec="seconds"),
            "counts": {str(status): n for status, n in last.counts.items()},
            "rate_limited": dict(last.rate_limited),
            "hosts": {host: {str(status): n for status, n in counts.items()}
                      for host, counts in last.hosts.items()},
            "unreachable": dict(last.unreachable),
        }))
