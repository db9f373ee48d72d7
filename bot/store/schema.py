"""The store's schema: MIGRATIONS, one SQL script per schema version.

A file's `PRAGMA user_version` says how many of them it has run; opening it runs the rest
(bot/store/connection.py), so a file written by any older DockWarden is migrated in place.
Only ever append: a released entry is never edited, or files of that version would differ.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # version 1
    """
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        container TEXT NOT NULL,
        step TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        outcome TEXT
    );
    CREATE INDEX journal_open ON journal (finished);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        container TEXT,
        action TEXT NOT NULL,
        actor TEXT,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX history_container ON history (container, id);
    """,
    # version 2: the bot's state
    """
    CREATE TABLE seen_digests (
        container TEXT PRIMARY KEY,
        image TEXT NOT NULL,
        remote_digest TEXT NOT NULL,
        seen_at TEXT NOT NULL
    );
    CREATE TABLE updates (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        container TEXT NOT NULL,
        image TEXT NOT NULL,
        old_digest TEXT,
        remote_digest TEXT NOT NULL,
        policy TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        UNIQUE (container, remote_digest)
    );
    CREATE INDEX updates_state ON updates (state, seq);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        update_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX approvals_update ON approvals (update_id);
    CREATE TABLE ignores (
        container TEXT NOT NULL,
        digest TEXT NOT NULL DEFAULT '',
        actor TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (container, digest)
    );
    CREATE TABLE snoozes (
        container TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        actor TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE alert_keys (
        key TEXT PRIMARY KEY,
        detail TEXT NOT NULL DEFAULT '',
        said_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        adapter TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # version 3: safer automation (bot/store/safety.py reads and writes these)
    """
    CREATE TABLE previous_images (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        container TEXT NOT NULL,
        image TEXT NOT NULL,
        old_image_id TEXT NOT NULL,
        old_digest TEXT,
        new_image_id TEXT NOT NULL,
        new_digest TEXT,
        updated_at TEXT NOT NULL,
        keep_until TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'kept'
    );
    CREATE INDEX previous_images_container ON previous_images (container, state, id);
    CREATE TABLE rolled_back_digests (
        container TEXT NOT NULL,
        digest TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (container, digest)
    );
    CREATE TABLE digests_first_seen (
        container TEXT NOT NULL,
        digest TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (container, digest)
    );
    CREATE TABLE auto_waits (
        update_id TEXT PRIMARY KEY,
        container TEXT NOT NULL,
        run_at TEXT NOT NULL
    );
    """,
    # version 4: newer version tags and what an update brings (bot/check/image_info.py)
    """
    ALTER TABLE updates ADD COLUMN new_tag TEXT;
    ALTER TABLE updates ADD COLUMN brings TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE image_configs (
        digest TEXT PRIMARY KEY,
        info TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    """,
    # version 5: the Compose project and service of an update's container (PROJECT/SERVICE)
    """
    ALTER TABLE updates ADD COLUMN compose TEXT;
    """,
    # version 6: whether an update's container was stopped when it was found
    """
    ALTER TABLE updates ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;
    """,
)
