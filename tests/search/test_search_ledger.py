"""The search ledger: an ASHA search saved mid-flight loads back equal, rungs readable with SQL."""
import json
import sqlite3

from foundry.search.asha import AshaSearch, rung_budgets
from foundry.search.ledger import SearchLedger
from tests.search.test_asha import _trials, simulate

REQUEST = {"baseline": "/b.yaml", "labels": ["lr:x2"], "asha": None, "seeds": 2, "eval_task": None}


def test_saved_search_loads_back_equal_with_running_jobs_requeued(tmp_path):
    search = AshaSearch(rung_budgets(1, 3, 27), 3, _trials(6), top_k=2, seeds=2)
    still_running = simulate(search, workers=2, stop_after_reports=7)
    assert still_running
    ledger = SearchLedger(str(tmp_path / "ledger.sqlite"))
    assert ledger.request() is None and ledger.load() is None
    ledger.save(REQUEST, search)
    ledger.close()

    again = SearchLedger(str(tmp_path / "ledger.sqlite"))
    loaded = again.load()
    assert again.request() == REQUEST and loaded.to_dict() == search.to_dict()
    assert sorted(j["id"] for j in loaded.requeue) == sorted(j["id"] for j in still_running)
    rungs = sqlite3.connect(tmp_path / "ledger.sqlite").execute(
        "SELECT trial, rung, objective FROM jobs WHERE run = trial AND status != 'running'").fetchall()
    assert len(rungs) == 7 and {(t, str(r)) for t, r, _ in rungs} == {
        (t["id"], r) for t in search.trials.values() for r in t["rungs"]}

    simulate(loaded)  # the restarted search finishes from where it was
    assert loaded.finished() and loaded.winner()["trial"] == "t05"  # t07 absent: nearest is t05


def test_a_search_saved_as_json_before_the_ledger_is_imported_once(tmp_path):
    search = AshaSearch([27], 3, _trials(3), top_k=3, seeds=2, always_confirm=())
    simulate(search, workers=2, stop_after_reports=2)
    legacy = tmp_path / "search.json"
    legacy.write_text(json.dumps({"request": REQUEST, "search": search.to_dict()}))
    ledger = SearchLedger(str(tmp_path / "ledger.sqlite"))
    ledger.import_json(str(legacy))
    assert not legacy.exists() and ledger.request() == REQUEST and ledger.load().to_dict() == search.to_dict()
