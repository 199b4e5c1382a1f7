"""The conversation log: every prompt and answer in one SQLite file (stdlib ``sqlite3``).

Several solarstream processes may write at once: the file is in WAL mode (readers never block the
writer), each write is one short ``BEGIN IMMEDIATE`` transaction, and a busy file is waited for
(``busy_timeout``) rather than failed. The schema is created under the same lock, so two first
runs cannot race, and ``PRAGMA user_version`` records its version for later migrations.

What is stored: prompt, system prompt, answer and reasoning as they arrived, the model asked for
and the one the API said answered, the request parameters, usage, time, duration, status
(``complete``, ``interrupted``, ``failed``) and the error line. Never an API key, a proxy, or a
header: the endpoint is ``offline`` or the base URL without credentials, query or fragment.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "LogRecord", "LogStore", "LogStoreError", "new_id"]

SCHEMA_VERSION = 1
STATUSES = ("complete", "interrupted", "failed")

_SCHEMA = f"""
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    model_asked TEXT NOT NULL,
    model TEXT,
    system TEXT,
    prompt TEXT NOT NULL,
    response TEXT NOT NULL,
    reasoning TEXT,
    options TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    finish_reason TEXT,
    error TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    usage TEXT,
    endpoint TEXT NOT NULL,
    datetime_utc TEXT NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX responses_by_conversation ON responses (conversation_id);
PRAGMA user_version = {SCHEMA_VERSION};
"""

_COLUMNS = ("id", "conversation_id", "model_asked", "model", "system", "prompt", "response", "reasoning",
            "options", "status", "finish_reason", "error", "prompt_tokens", "completion_tokens",
            "total_tokens", "usage", "endpoint", "datetime_utc", "duration_ms")

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id() -> str:
    """A ULID in lower case (as ``llm`` uses): 48 bits of milliseconds, then 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class LogStoreError(Exception):
    """The log file cannot be used (not a database, no permission, a newer schema)."""


@dataclass(frozen=True)
class LogRecord:
    """One prompt and what came back."""

    id: str
    conversation_id: str
    model_asked: str
    model: str | None
    system: str | None
    prompt: str
    response: str
    reasoning: str | None
    options: dict[str, Any]
    status: str
    finish_reason: str | None
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    usage: dict[str, Any] | None
    endpoint: str
    datetime_utc: str
    duration_ms: int

    @property
    def usable_in_history(self) -> bool:
        """Whether continuing the conversation sends this turn again: complete answers, and
        interrupted ones that got some text (as ``-i`` keeps them); failed turns are left out."""
        return self.status == "complete" or (self.status == "interrupted" and bool(self.response))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> LogRecord:
        values = dict(row)
        values["options"] = json.loads(values["options"])
        values["usage"] = json.loads(values["usage"]) if values["usage"] is not None else None
        return cls(**{name: values[name] for name in _COLUMNS})


class LogStore:
    """An open log file; use as a context manager, or ``close()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=15, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LogStoreError(f"cannot open the log {path}: {exc}") from exc
        try:
            self._db.row_factory = sqlite3.Row
            self._db.create_function("casefold", 1, _casefold, deterministic=True)
            self._db.execute("PRAGMA busy_timeout = 15000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise LogStoreError(f"cannot use the log {path}: {exc}") from exc

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise LogStoreError(f"the log {self.path} was written by a newer solarstream (schema {version}); "
                                "upgrade solarstream or set SOLARSTREAM_LOGS_PATH to another file")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # another process may have created it while we waited for the lock
            if self._db.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # --- writing ----------------------------------------------------------------------------------

    def add(self, record: LogRecord, *, conversation_name: str) -> None:
        """Store one record (and its conversation, the first time), in one short transaction."""
        row = record.to_json()
        row["options"] = json.dumps(record.options, ensure_ascii=False)
        row["usage"] = json.dumps(record.usage, ensure_ascii=False) if record.usage is not None else None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO conversations (id, name, model, created) VALUES (?, ?, ?, ?)",
                    (record.conversation_id, conversation_name, record.model_asked, record.datetime_utc))
                self._db.execute(
                    f"INSERT INTO responses ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                    [row[name] for name in _COLUMNS])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise LogStoreError(f"cannot write to the log {self.path}: {exc}") from exc

    # --- reading ----------------------------------------------------------------------------------

    def _select(self, where: str = "", args: tuple[Any, ...] = (), *, newest: int | None = None) -> list[LogRecord]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM responses {where} ORDER BY rowid DESC"
        if newest:
            sql += f" LIMIT {int(newest)}"
        try:
            rows = self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise LogStoreError(f"cannot read the log {self.path}: {exc}") from exc
        return [LogRecord._from_row(row) for row in reversed(rows)]

    def latest_conversation(self) -> str | None:
        """The conversation of the most recent record."""
        rows = self._select(newest=1)
        return rows[0].conversation_id if rows else None

    def conversation(self, conversation_id: str) -> list[LogRecord]:
        """Its records, oldest first (empty if there is no such conversation)."""
        return self._select("WHERE conversation_id = ?", (conversation_id,))

    def recent(self, count: int | None, *, query: str | None = None, model: str | None = None,
               conversation_id: str | None = None) -> list[LogRecord]:
        """The newest ``count`` records (all if None or 0) that match, oldest first.

        ``query`` matches prompt, system prompt or answer, ignoring case (also outside ASCII);
        ``model`` matches the model asked for or the one that answered.
        """
        clauses: list[str] = []
        args: list[Any] = []
        if query:
            clauses.append("(instr(casefold(prompt), ?) OR instr(casefold(response), ?) "
                           "OR instr(casefold(coalesce(system, '')), ?))")
            args += [query.casefold()] * 3
        if model:
            clauses.append("(model_asked = ? OR model = ?)")
            args += [model, model]
        if conversation_id:
            clauses.append("conversation_id = ?")
            args.append(conversation_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(where, tuple(args), newest=count or None)

    def conversation_ids(self, prefix: str, limit: int = 20) -> Iterator[tuple[str, str]]:
        """(id, name) of recent conversations whose id starts with ``prefix`` (for completion)."""
        rows = self._db.execute(
            "SELECT id, name FROM conversations WHERE id LIKE ? ESCAPE '\\' ORDER BY created DESC LIMIT ?",
            (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", limit))
        for row in rows:
            yield row["id"], row["name"]

    def counts(self) -> tuple[int, int]:
        """(conversations, records)."""
        conversations = self._db.execute("SELECT count(*) FROM conversations").fetchone()[0]
        records = self._db.execute("SELECT count(*) FROM responses").fetchone()[0]
        return int(conversations), int(records)


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value
