"""Reads of the store's tables that only tests make (the bot itself never asks them)."""

from __future__ import annotations

from bot.store.connection import Database


def seen_digest(db: Database, container: str) -> str | None:
    """The remote digest last seen for `container`, if any."""
    with db.reading() as conn:
        row = conn.execute(
            "SELECT remote_digest FROM seen_digests WHERE container = ?", (container,)
        ).fetchone()
    return None if row is None else str(row["remote_digest"])


def approvers(db: Database, update_id: str) -> list[str]:
    """Who approved that update, oldest first."""
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT actor FROM approvals WHERE update_id = ? ORDER BY id", (update_id,)
        ).fetchall()
    return [str(row["actor"]) for row in rows]

