"""agent.ledger: WAL mode, atomic phase changes, re-queueing, failure counts, read-only access."""
import sqlite3

import pytest

from agent.ledger import Ledger
from foundry.errors import UserError


def trial(tid, gen=1, variant="v01", config_hash="abc", role="screen"):
    return dict(id=tid, gen=gen, variant=variant, role=role, config_path=f"{variant}.yaml",
                config_hash=config_hash, parent="tiny@000", mutation="lr:x2", seed=7, run_dir=f"runs/{tid}")


def test_lifecycle_requeue_and_failure_count(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    led = Ledger(path)
    assert led.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    led.start_generation(1, "base0", "baselines/tiny.yaml", 1337, "fp", [trial("a"), trial("b"), trial("c")])
    assert [t["status"] for t in led.trials(gen=1)] == ["queued"] * 3
    led.mark_running("a", "cpu0", "cpu", 123, "fp")
    led.mark_finished("a", "failed", None, {"status": "failed"}, "RuntimeError: x", "Traceback...", 2.0)
    led.mark_running("b", "cpu1", "cpu", 124, "fp")
    led.mark_running("c", "cpu0", "cpu", 125, "fp")
    led.mark_finished("c", "interrupted", None, None, "stopped", "", 1.0)
    requeued = led.requeue_unfinished()   # b was running when the supervisor died, c was stopped
    assert {t["id"] for t in requeued} == {"b", "c"}
    assert {t["id"]: t["status"] for t in led.trials()} == {"a": "failed", "b": "queued", "c": "queued"}
    assert led.trials(status="failed")[0]["log_tail"] == "Traceback..."
    assert led.failure_count("abc") == 1
    assert led.tried_against("abc", "base0") and not led.tried_against("abc", "other")
    led.close()

    reader = Ledger(path, readonly=True)
    assert len(reader.trials(status=["queued", "failed"])) == 3
    with pytest.raises(sqlite3.OperationalError):
        reader.set_meta("x", 1)
    with pytest.raises(ValueError):
        reader.trials(bogus=1)


def test_decision_and_phase_move_together(tmp_path):
    led = Ledger(str(tmp_path / "ledger.sqlite"))
    led.start_generation(1, "base0", "baselines/tiny.yaml", 1337, "fp", [])
    led.set_phase(1, "confirm", [trial("d", role="confirm")], candidate="v01")
    assert led.generation(1)["candidate"] == "v01" and led.generation(1)["phase"] == "confirm"
    led.record_decision(1, "promote", "intent", "promote", variant="v01", details={"promotion": {"x": 1}})
    with pytest.raises(sqlite3.IntegrityError):   # one decision per generation, never two
        led.record_decision(1, "promote", "intent", "promote")
    assert led.generation(1)["phase"] == "promote"
    led.finish_promotion(1, "committed", "f" * 40)
    assert led.decision(1)["state"] == "committed" and led.generation(1)["phase"] == "cleanup"
    assert [d["gen"] for d in led.decisions("promote")] == [1]


def test_missing_ledger_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no ledger"):
        Ledger(str(tmp_path / "nope.sqlite"), readonly=True)
