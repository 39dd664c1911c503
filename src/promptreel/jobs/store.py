"""Every generation and every job, in one SQLite table that survives crashes.

A row is created before any work starts and is the only truth about it: the CLI and the Python
API add rows that start as `running`; the service adds `queued` rows that its worker claims.

    queued -> running -> succeeded | failed | cancelled   (each end with its reason)

The database lives in the user data folder (`PROMPTREEL_HOME`, else the platform's one) as
`promptreel.db`, in WAL mode so that the web page can read while a worker writes. Its schema is
built by numbered migrations, each applied once inside a transaction and recorded in the
`migrations` table (the way simonw/llm does it), so an old database is upgraded in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..home import home

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
MAX_ATTEMPTS = 3  # a job whose runs were cut short this often (server killed) fails for good
MAX_SKIPS = 3  # how often a queued job may be passed over for one on the loaded model

MIGRATIONS: list[tuple[str, str]] = [
    (
        "jobs",
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,              -- cli, python or service
            status TEXT NOT NULL,
            reason TEXT,                       -- why it failed or was cancelled: one line
            model TEXT NOT NULL,               -- as asked (alias, repo id or folder)
            prompt TEXT,
            request TEXT NOT NULL,             -- the GenerationRequest as JSON
            output_format TEXT,                -- the service's file type: mp4, webm or gif
            seed INTEGER,
            record TEXT,                       -- the generation record (JSON) once it ran
            outputs TEXT NOT NULL DEFAULT '[]',  -- JSON list of the files written
            attempts INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,  -- passed over for a job on the loaded model
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            stage TEXT,
            step INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            eta REAL,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE INDEX jobs_status ON jobs (status, id);
        """,
    ),
    (
        "owner_pid",
        # the process running a CLI or Python row: a row whose process died is not `running`
        "ALTER TABLE jobs ADD COLUMN owner_pid INTEGER",
    ),
    (
        "owner_start",
        # when that process started: after a restart its pid may belong to another process
        "ALTER TABLE jobs ADD COLUMN owner_start TEXT",
    ),
    (
        "batch_key",
        # a batch's video: its settled request and output file, so a rerun finds what is done
        "ALTER TABLE jobs ADD COLUMN batch_key TEXT; CREATE INDEX jobs_batch ON jobs (batch_key)",
    ),
]


@dataclass
class Job:
    """One row of the store, JSON fields decoded."""

    id: int
    source: str
    status: str
    reason: str | None
    model: str
    prompt: str | None
    request: dict[str, Any]
    output_format: str | None
    seed: int | None
    record: dict[str, Any] | None
    outputs: list[str]
    attempts: int
    cancel_requested: bool
    stage: str | None
    step: int
    total: int
    eta: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    skipped: int = field(default=0, repr=False)
    owner_pid: int | None = field(default=None, repr=False)
    owner_start: str | None = field(default=None, repr=False)
    batch_key: str | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        hidden = ("skipped", "owner_pid", "owner_start", "stage", "step")
        data = {k: v for k, v in self.__dict__.items() if k not in hidden}
        data["progress"] = {"stage": self.stage, "step": self.step, "total": self.total}
        data.pop("total")
        return data


class JobStore:
    """The jobs table. Each call opens its own connection: threads and processes may share it."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else home() / "promptreel.db"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._unusable(e) from None
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            self._migrate(db)
        self.settle_orphans()

    def _unusable(self, e: Exception) -> OutputError:
        return OutputError(
            f"cannot use the history database {self.path}: {e}; set PROMPTREEL_HOME to a "
            "writable folder, or pass --no-history."
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; any SQLite failure (a full disk, a broken file) is one OutputError."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise self._unusable(e) from None
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        except sqlite3.Error as e:
            raise self._unusable(e) from None
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock up front, so read-then-write cannot interleave."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute(
            "CREATE TABLE IF NOT EXISTS migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        done = {row[0] for row in db.execute("SELECT version FROM migrations")}
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                # another process may have applied it while this one waited for the lock
                if db.execute("SELECT 1 FROM migrations WHERE version=?", (version,)).fetchone():
                    db.execute("ROLLBACK")
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO migrations VALUES (?, ?, ?)", (version, name, time.time()))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- writing -----------------------------------------------------------------------------

    def add(
        self,
        request: dict[str, Any],
        *,
        source: str,
        status: str = "queued",
        output_format: str | None = None,
        max_queued: int | None = None,
        batch_key: str | None = None,
    ) -> int | None:
        """A new row, committed before its id is returned; None if `max_queued` are waiting."""
        now = time.time()
        with self._transaction() as db:
            if max_queued is not None:
                waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE status='queued'").fetchone()
                if waiting[0] >= max_queued:
                    return None
            cursor = db.execute(
                "INSERT INTO jobs (source, status, model, prompt, request, output_format, seed,"
                " created_at, started_at, attempts, owner_pid, owner_start, batch_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    source,
                    status,
                    request.get("model") or "",
                    request.get("prompt"),
                    json.dumps(request),
                    output_format,
                    _int64(request.get("seed")),  # a refused 330-digit seed stays in `request`
                    now,
                    now if status == "running" else None,
                    1 if status == "running" else 0,
                    os.getpid() if status == "running" else None,
                    _process_start(os.getpid()) if status == "running" else None,
                    batch_key,
                ),
            )
            return int(cursor.lastrowid or 0)

    def claim(self, loaded_model: str | None) -> Job | None:
        """The next queued job, now `running`: the oldest, or the oldest on `loaded_model`
        when that passes over no job more than MAX_SKIPS times (no starvation)."""
        with self._transaction() as db:
            oldest = db.execute(
                "SELECT id, model FROM jobs WHERE status='queued' ORDER BY id LIMIT 1"
            ).fetchone()
            if oldest is None:
                return None
            chosen = oldest["id"]
            if loaded_model is not None and oldest["model"] != loaded_model:
                same = db.execute(
                    "SELECT id FROM jobs WHERE status='queued' AND model=? ORDER BY id LIMIT 1",
                    (loaded_model,),
                ).fetchone()
                most_skipped = db.execute(
                    "SELECT MAX(skipped) FROM jobs WHERE status='queued' AND id < ?",
                    (same["id"] if same else 0,),
                ).fetchone()[0]
                if same is not None and (most_skipped or 0) < MAX_SKIPS:
                    chosen = same["id"]
                    db.execute(
                        "UPDATE jobs SET skipped = skipped + 1 WHERE status='queued' AND id < ?",
                        (chosen,),
                    )
            db.execute(
                "UPDATE jobs SET status='running', attempts = attempts + 1, started_at=?,"
                " stage=NULL, step=0, total=0, eta=NULL WHERE id=?",
                (time.time(), chosen),
            )
            return self._get(db, chosen)

    def progress(self, job_id: int, stage: str, step: int, total: int, eta: float | None) -> bool:
        """Store where a running job is; returns True if a cancel was asked for."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET stage=?, step=?, total=?, eta=? WHERE id=?",
                (stage, step, total, eta, job_id),
            )
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def finish(
        self,
        job_id: int,
        status: str,
        *,
        reason: str | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        assert status in FINISHED, f"{status} is not a final status"
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status=?, reason=?, record=COALESCE(?, record), seed="
                " COALESCE(?, seed), finished_at=?, eta=NULL WHERE id=?",
                (
                    status,
                    reason,
                    json.dumps(record) if record is not None else None,
                    record.get("seed") if record else None,
                    time.time(),
                    job_id,
                ),
            )

    def add_output(self, job_id: int, path: str | os.PathLike[str]) -> None:
        """Note a file written; the first one's suffix is the job's format (a CLI row's too)."""
        kind = Path(path).suffix.lstrip(".").lower() or "png"  # no suffix: a PNG folder
        with self._transaction() as db:
            row = db.execute("SELECT outputs FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                return
            outputs = json.loads(row[0])
            if os.fspath(path) not in outputs:
                outputs.append(os.fspath(path))
            db.execute(
                "UPDATE jobs SET outputs=?, output_format=COALESCE(output_format, ?) WHERE id=?",
                (json.dumps(outputs), kind, job_id),
            )

    def cancel(self, job_id: int) -> Job | None:
        """Cancel a queued job now, or ask a running one to stop at its next step (not once
        it writes its finished video). Returns the job after it (None if there is none)."""
        with self._transaction() as db:
            job = self._get(db, job_id)
            if job is None or job.finished:
                return job
            if job.status == "queued":
                db.execute(
                    "UPDATE jobs SET status='cancelled', reason='cancelled while queued',"
                    " finished_at=? WHERE id=?",
                    (time.time(), job_id),
                )
            elif job.stage != "write":  # the video is complete and being saved: let it be
                db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
            return self._get(db, job_id)

    def remove(self, job_id: int) -> Job | None:
        """Delete a row that is not running (the caller removes its files); the row or None."""
        with self._transaction() as db:
            job = self._get(db, job_id)
            if job is not None and job.status != "running":
                db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
            return job

    def recover(self) -> list[Job]:
        """After a crash: the service's `running` rows were cut short (the caller holds the
        service lock, so no other worker runs them). Queue them again, or fail those that were
        cut short MAX_ATTEMPTS times. Returns the rows as they are now."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, attempts FROM jobs WHERE status='running' AND source='service'"
            ).fetchall()
            for row in rows:
                if row["attempts"] >= MAX_ATTEMPTS:
                    db.execute(
                        "UPDATE jobs SET status='failed', reason=?, finished_at=? WHERE id=?",
                        (
                            f"the server stopped during this job {row['attempts']} times; "
                            "not trying again",
                            time.time(),
                            row["id"],
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE jobs SET status='queued', stage=NULL, step=0, total=0, eta=NULL"
                        " WHERE id=?",
                        (row["id"],),
                    )
            return [job for row in rows if (job := self._get(db, row["id"])) is not None]

    def settle_orphans(self) -> None:
        """CLI and Python rows whose process ended (killed, or the machine stopped) mid-run
        fail, so that they can be removed and are not shown as running for ever."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, owner_pid, owner_start FROM jobs"
                " WHERE status='running' AND source!='service'"
            ).fetchall()
            for row in rows:
                if not _alive(row["owner_pid"], row["owner_start"]):
                    db.execute(
                        "UPDATE jobs SET status='failed', reason='the process ended before "
                        "finishing', finished_at=?, eta=NULL WHERE id=? AND status='running'",
                        (time.time(), row["id"]),
                    )

    def requeue(self, job_id: int, *, attempt: bool = False) -> None:
        """Put a running job back at its place in the queue: a clean shutdown is not an
        attempt; `attempt`: its run was cut short (its Ray actor died) and counts as one."""
        taken = "attempts" if attempt else "MAX(attempts - 1, 0)"
        with self._connect() as db:
            db.execute(
                f"UPDATE jobs SET status='queued', attempts = {taken}, stage=NULL,"
                " step=0, total=0, eta=NULL WHERE id=? AND status='running'",
                (job_id,),
            )

    # --- reading -----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        with self._connect() as db:
            return self._get(db, job_id)

    def list(
        self,
        *,
        text: str | None = None,
        model: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        """Newest first, filtered; with the number of rows that match before paging."""
        where, args = [], []
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(prompt LIKE ? ESCAPE '\\' OR model LIKE ? ESCAPE '\\')")
            args += [f"%{escaped}%"] * 2
        if model:
            where.append("model = ?")
            args.append(model)
        if status:
            where.append("status = ?")
            args.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        self.settle_orphans()
        with self._connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM jobs {clause}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM jobs {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [_job(row) for row in rows], int(total)

    def batch_done(self, batch_key: str) -> Job | None:
        """The latest batch row under `batch_key` that succeeded, if any."""
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE batch_key=? AND status='succeeded' ORDER BY id DESC",
                (batch_key,),
            ).fetchone()
        return _job(row) if row is not None else None

    def batch_wrote(self, batch_key: str, path: str | os.PathLike[str]) -> bool:
        """Whether a batch row under `batch_key` set out to write `path` (its file to replace)."""
        with self._connect() as db:
            rows = db.execute("SELECT outputs FROM jobs WHERE batch_key=?", (batch_key,))
            return any(os.fspath(path) in json.loads(row[0]) for row in rows)

    def count(self, status: str) -> int:
        with self._connect() as db:
            return int(
                db.execute("SELECT COUNT(*) FROM jobs WHERE status=?", (status,)).fetchone()[0]
            )

    def _get(self, db: sqlite3.Connection, job_id: int) -> Job | None:
        row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row) if row is not None else None


def _process_start(pid: int) -> str | None:
    """When process `pid` started, as "boot id:clock ticks since boot" (Linux), else None."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22; the name may hold spaces


def _alive(pid: int | None, start: str | None) -> bool:
    """Whether the process that ran a row still runs: same pid and, where known, same start."""
    if pid is None:  # a row from before owner_pid was recorded
        return False
    if sys.platform == "win32":  # no signal 0 to ask with
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or no way to tell
        pass
    return start is None or _process_start(pid) in (start, None)


def _int64(value: Any) -> int | None:
    return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None


def _job(row: sqlite3.Row) -> Job:
    names = {f.name for f in fields(Job)}
    data = {k: v for k, v in dict(row).items() if k in names}  # a newer migration's columns
    data["request"] = json.loads(data["request"])
    data["record"] = json.loads(data["record"]) if data["record"] else None
    data["outputs"] = json.loads(data["outputs"])
    data["cancel_requested"] = bool(data["cancel_requested"])
    return Job(**data)
