"""The campaign ledger: SQLite in WAL mode at experiments/CAMPAIGN/ledger.sqlite.

    led = Ledger(path)                  # the supervisor: the only writer
    led = Ledger(path, readonly=True)   # `foundry status` / `foundry runs`, while it runs
    led.trials(status="done", generation=3)

Tables: generations (phase of each generation, the baseline it started from), trials (one
row per training run: config hash, parent, mutation, seed, worker, status, metrics, failure
reason with the log tail, timings, code fingerprint) and decisions (one per generation:
promote / near_miss / reject with its numbers; a promotion moves intent -> committed so a
crash between deciding and committing is finished on restart, never repeated).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time

from foundry.errors import UserError
from foundry.io import to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    gen INTEGER PRIMARY KEY, phase TEXT NOT NULL, baseline_hash TEXT NOT NULL,
    baseline_path TEXT NOT NULL, seed INTEGER NOT NULL, fingerprint TEXT, candidate TEXT,
    started_at REAL NOT NULL, finished_at REAL);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY, gen INTEGER NOT NULL, variant TEXT NOT NULL, role TEXT NOT NULL,
    config_path TEXT NOT NULL, config_hash TEXT NOT NULL, parent TEXT, mutation TEXT,
    seed INTEGER NOT NULL, run_dir TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0, worker TEXT, device TEXT, pid INTEGER,
    metric REAL, val_bpb REAL, val_loss REAL, summary TEXT, reason TEXT, log_tail TEXT,
    queued_at REAL, started_at REAL, finished_at REAL, wall_s REAL, train_s REAL,
    fingerprint TEXT);
CREATE INDEX IF NOT EXISTS trials_gen ON trials(gen);
CREATE INDEX IF NOT EXISTS trials_hash ON trials(config_hash);
CREATE TABLE IF NOT EXISTS decisions (
    gen INTEGER PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, variant TEXT,
    mutation TEXT, metric TEXT, baseline_mean REAL, candidate_mean REAL, improvement REAL,
    threshold REAL, se REAL, reason TEXT, details TEXT, commit_sha TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
FAILED = ("failed", "timeout")            # counted towards "a config that fails twice"
FINISHED = ("done", "failed", "diverged", "timeout")
TRIAL_FILTERS = ("gen", "status", "variant", "role", "config_hash")


class Ledger:
    def __init__(self, path: str, readonly: bool = False):
        self.path = path
        if readonly:
            if not os.path.exists(path):
                raise UserError(f"{path}: no ledger (has `foundry run` started this campaign?)")
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        else:
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def _rows(self, sql: str, args=()) -> list[dict]:
        return [dict(r) for r in self.db.execute(sql, args)]

    # ---- meta
    def get_meta(self, key: str, default=None):
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_meta(self, key: str, value) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, to_json(value)))

    # ---- generations
    def generation(self, gen: int) -> dict | None:
        rows = self._rows("SELECT * FROM generations WHERE gen=?", (gen,))
        return rows[0] if rows else None

    def last_generation(self) -> dict | None:
        rows = self._rows("SELECT * FROM generations ORDER BY gen DESC LIMIT 1")
        return rows[0] if rows else None

    def generations(self) -> list[dict]:
        return self._rows("SELECT * FROM generations ORDER BY gen")

    def start_generation(self, gen: int, baseline_hash: str, baseline_path: str, seed: int,
                         fingerprint: str, trials: list[dict]) -> None:
        """The generation row and its first trials appear together or not at all."""
        with self.db:
            self.db.execute("INSERT INTO generations (gen, phase, baseline_hash, baseline_path, seed,"
                            " fingerprint, started_at) VALUES (?, 'screen', ?, ?, ?, ?, ?)",
                            (gen, baseline_hash, baseline_path, seed, fingerprint, time.time()))
            self._insert_trials(trials)

    def set_phase(self, gen: int, phase: str, trials: list[dict] = (), candidate: str | None = None) -> None:
        """Move a generation on; new trials and the chosen candidate are written in the same transaction."""
        with self.db:
            self._insert_trials(trials)
            done = time.time() if phase == "done" else None
            self.db.execute("UPDATE generations SET phase=?, finished_at=?, candidate=COALESCE(?, candidate)"
                            " WHERE gen=?", (phase, done, candidate, gen))

    # ---- trials
    def _insert_trials(self, trials) -> None:
        for t in trials:
            row = {**t, "status": "queued", "queued_at": time.time()}
            cols = ", ".join(row)
            self.db.execute(f"INSERT INTO trials ({cols}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))

    def trials(self, limit: int | None = None, order: str = "gen, id", **filters) -> list[dict]:
        where, args = [], []
        for key, value in filters.items():
            if key not in TRIAL_FILTERS:
                raise ValueError(f"unknown trial filter {key!r}")
            if value is not None:
                values = value if isinstance(value, (list, tuple)) else [value]
                where.append(f"{key} IN ({', '.join('?' * len(values))})")
                args += list(values)
        sql = "SELECT * FROM trials" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else "")
        return self._rows(sql, args)

    def mark_running(self, trial_id: str, worker: str, device: str, pid: int, fingerprint: str) -> None:
        with self.db:
            self.db.execute("UPDATE trials SET status='running', attempts=attempts+1, worker=?, device=?,"
                            " pid=?, fingerprint=?, started_at=?, finished_at=NULL WHERE id=?",
                            (worker, device, pid, fingerprint, time.time(), trial_id))

    def mark_finished(self, trial_id: str, status: str, metric, summary: dict | None, reason: str,
                      log_tail: str, wall_s: float) -> None:
        s = summary or {}
        with self.db:
            self.db.execute(
                "UPDATE trials SET status=?, metric=?, val_bpb=?, val_loss=?, summary=?, reason=?,"
                " log_tail=?, finished_at=?, wall_s=?, train_s=? WHERE id=?",
                (status, metric, s.get("val_bpb"), s.get("val_loss"), to_json(summary) if summary else None,
                 reason or None, log_tail if status != "done" else None, time.time(), wall_s,
                 s.get("wall_s"), trial_id))

    def requeue_unfinished(self, keep=()) -> list[dict]:
        """After a crash or a clean stop: running and interrupted trials go back to the queue, but
        those in `keep` (still running on a cluster, re-attached)."""
        rows = [r for r in self._rows("SELECT * FROM trials WHERE status IN ('running', 'interrupted')")
                if r["id"] not in keep]
        with self.db:
            self.db.executemany("UPDATE trials SET status='queued', reason='interrupted; re-queued' WHERE id=?",
                                [(r["id"],) for r in rows])
        return rows

    def failure_count(self, config_hash: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM trials WHERE config_hash=? AND status IN (?, ?)",
                               (config_hash, *FAILED)).fetchone()[0]

    def tried_against(self, config_hash: str, baseline_hash: str) -> bool:
        """Was this config already screened against this very baseline?"""
        return self.db.execute(
            "SELECT COUNT(*) FROM trials t JOIN generations g ON t.gen=g.gen WHERE t.config_hash=?"
            " AND g.baseline_hash=? AND t.role='screen' AND t.variant!='baseline'",
            (config_hash, baseline_hash)).fetchone()[0] > 0

    # ---- decisions
    def decision(self, gen: int) -> dict | None:
        rows = self._rows("SELECT * FROM decisions WHERE gen=?", (gen,))
        return rows[0] if rows else None

    def decisions(self, kind: str | None = None) -> list[dict]:
        if kind:
            return self._rows("SELECT * FROM decisions WHERE kind=? ORDER BY gen", (kind,))
        return self._rows("SELECT * FROM decisions ORDER BY gen")

    def record_decision(self, gen: int, kind: str, state: str, next_phase: str, **fields) -> None:
        """The decision and the generation's next phase are written in one transaction."""
        row = {"gen": gen, "kind": kind, "state": state, "created_at": time.time(), **fields}
        if isinstance(row.get("details"), dict):
            row["details"] = to_json(row["details"])
        with self.db:
            self.db.execute(f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                            tuple(row.values()))
            self.db.execute("UPDATE generations SET phase=? WHERE gen=?", (next_phase, gen))

    def finish_promotion(self, gen: int, state: str, commit_sha: str | None, reason: str | None = None) -> None:
        with self.db:
            self.db.execute("UPDATE decisions SET state=?, commit_sha=?, reason=COALESCE(?, reason)"
                            " WHERE gen=?", (state, commit_sha, reason, gen))
            self.db.execute("UPDATE generations SET phase='cleanup' WHERE gen=?", (gen,))
