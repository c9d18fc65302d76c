"""The search ledger: a sweep's whole state (trials, every rung job and its result) in SQLite.

    ledger = SearchLedger("DIR/ledger.sqlite")
    ledger.request()                    # what this folder searches (None for a new one)
    ledger.save(request, search)        # after every change; one transaction
    search = ledger.load()              # AshaSearch as saved: a restarted search keeps its rungs
    sqlite3 DIR/ledger.sqlite "SELECT trial, rung, budget, objective FROM jobs WHERE run = trial"

One row per trial and one per job (a rung of a trial's own run, or a confirmation seed), so the rung
results can be read with plain SQL while the search runs. WAL mode, synchronous writes: a search
killed at any moment restarts from the last saved state. Jobs still marked running then are run
again, from their checkpoints (AshaSearch.from_dict).
"""
from __future__ import annotations

import json
import os
import sqlite3

from foundry.io import to_json
from foundry.search.asha import AshaSearch

SCHEMA = """
CREATE TABLE IF NOT EXISTS search (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY, label TEXT NOT NULL, config TEXT NOT NULL, seed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, trial TEXT NOT NULL, phase TEXT NOT NULL,
    rung INTEGER NOT NULL, budget INTEGER NOT NULL, seed INTEGER NOT NULL, run TEXT NOT NULL,
    config TEXT NOT NULL, status TEXT NOT NULL, objective REAL, record TEXT NOT NULL,
    flops REAL NOT NULL, tokens INTEGER NOT NULL);
"""
SETTINGS = ("budgets", "eta", "top_k", "seeds", "always_confirm", "confirm")
JOB_COLUMNS = ("id", "trial", "phase", "rung", "budget", "seed", "run", "config", "status", "objective",
               "flops", "tokens")


class SearchLedger:
    def __init__(self, path: str):
        self.path = path
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row
        self._last_saved = None

    def close(self) -> None:
        self.db.close()

    def _setting(self, key: str):
        row = self.db.execute("SELECT value FROM search WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def request(self) -> dict | None:
        return self._setting("request")

    def save(self, request: dict, search: AshaSearch) -> None:
        state = search.to_dict()
        snapshot = json.dumps([request, state])
        if snapshot == self._last_saved:  # the driver saves on every poll; write only what changed
            return
        with self.db:  # one transaction: all of it or none of it
            settings = {"request": request, **{key: state[key] for key in SETTINGS}}
            self.db.executemany("INSERT OR REPLACE INTO search VALUES (?, ?)",
                                [(key, to_json(value)) for key, value in settings.items()])
            self.db.executemany("INSERT OR IGNORE INTO trials VALUES (?, ?, ?, ?)",
                                [(t["id"], t["label"], t["config"], t["seed"]) for t in state["trials"]])
            self.db.executemany(
                f"INSERT OR REPLACE INTO jobs (seq, record, {', '.join(JOB_COLUMNS)}) "
                f"VALUES (?, ?, {', '.join('?' * len(JOB_COLUMNS))})",
                [(seq, to_json(job["record"]), *(job[c] for c in JOB_COLUMNS))
                 for seq, job in enumerate(state["jobs"])])
        self._last_saved = snapshot

    def import_json(self, path: str) -> None:
        """A search saved before the ledger existed (DIR/search.json) moves into it, once."""
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        self.save(saved["request"], AshaSearch.from_dict(saved["search"]))
        os.remove(path)

    def load(self) -> AshaSearch | None:
        if self.request() is None:
            return None
        trials = [dict(row) for row in self.db.execute("SELECT * FROM trials ORDER BY id")]
        jobs = [{**{c: row[c] for c in JOB_COLUMNS}, "record": json.loads(row["record"])}
                for row in self.db.execute("SELECT * FROM jobs ORDER BY seq")]
        # each trial's rungs are derived from its finished jobs by AshaSearch.from_dict
        return AshaSearch.from_dict({**{key: self._setting(key) for key in SETTINGS}, "trials": trials, "jobs": jobs})
