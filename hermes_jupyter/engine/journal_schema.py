"""The journal's SQLite schema and its migrations (journal.py uses them).

The file carries its schema version in `PRAGMA user_version`; `MIGRATIONS[n]` takes a file
from version n - 1 to n in place, in one transaction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..core.errors import ConfigurationError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 2
_CREATE = """
CREATE TABLE IF NOT EXISTS tasks (
    session TEXT NOT NULL, id TEXT NOT NULL, name TEXT, goal TEXT NOT NULL, model TEXT NOT NULL,
    state TEXT NOT NULL, created_at REAL NOT NULL, ended_at REAL, exit_reason TEXT, error TEXT,
    summary TEXT, result TEXT, owner TEXT, PRIMARY KEY (session, id)
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
"""
# MIGRATIONS[n] takes a file from version n - 1 to n (version 0: the first, owner-less schema;
# a new file is made at version 1 by _CREATE, then migrated).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE tasks ADD COLUMN owner TEXT",),
    # 2: the task's context, the task it resumed, and its conversation: one row per step, the
    # messages from index `seq` on (a JSON list), so a turn appends only what it added.
    2: ("ALTER TABLE tasks ADD COLUMN context TEXT",
        "ALTER TABLE tasks ADD COLUMN resumed_from TEXT",
        "CREATE UNIQUE INDEX IF NOT EXISTS tasks_resumed ON tasks (resumed_from)",
        "CREATE TABLE IF NOT EXISTS turns (session TEXT NOT NULL, task TEXT NOT NULL, "
        "seq INTEGER NOT NULL, messages TEXT NOT NULL, PRIMARY KEY (session, task, seq))"),
}


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or bring an older file up to `SCHEMA_VERSION` in one transaction."""
    db.execute("BEGIN IMMEDIATE")  # two kernels opening one old file migrate it once
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"The journal {path} was written by a newer hermes_jupyter (schema {version}, "
                f"this one knows {SCHEMA_VERSION}): upgrade, or pass Session(journal=<another "
                "path>).")
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'tasks'").fetchone()
        if not exists:
            for statement in _CREATE.split(";"):
                if statement.strip():
                    db.execute(statement)
            version = 1
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
