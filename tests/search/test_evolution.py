"""Aging evolution over a fake trainer: stacked mutations, retire-the-oldest, restart from disk."""
import json
import os
import sys

import pytest

from foundry.catalog import from_dict, load
from foundry.runner.pool import plan_workers
from foundry.search.evolution import AgingEvolution, run_evolution

FAKE = [sys.executable, os.path.join(os.path.dirname(__file__), "fake_trainer.py")]


def _base():
    return from_dict({"name": "base", "train": {"lr": 0.003, "min_lr": 0.0003}, "budget": {"tokens": 2700}})


def _run(folder, log=lambda *a: None):
    evo = AgingEvolution.start(_base(), str(folder), population=4, sample=2, cycles=6, max_stack=2, seed=3)
    return evo, run_evolution(evo, plan_workers(2, gpus=[]), log=log, command=FAKE)


def test_children_stack_mutations_and_the_oldest_retire(tmp_path):
    evo, report = _run(tmp_path)
    members = evo.state["members"]
    assert report["members"] == 10 and report["cycles"] == 6
    assert len(evo.state["population"]) == 4
    assert all(not members[i]["retired"] for i in evo.state["population"])
    children = [m for m in members.values() if not m["initial"]]
    for child in children:
        parent = members[child["parent"]]
        assert child["mutations"][:len(parent["mutations"])] == parent["mutations"]
        assert 1 <= len(child["mutations"]) - len(parent["mutations"]) <= 2
        assert load(child["config"]).mutations == child["mutations"]
    # aging: whoever left the population is older than everyone still in it
    retired = [m["id"] for m in members.values() if m["retired"]]
    alive_children = [i for i in evo.state["population"] if not members[i]["initial"]]
    assert retired and all(r < a for r in retired for a in alive_children if not members[r]["initial"])
    assert report["best"]["objective"] == min(m["objective"] for m in members.values() if m["objective"])


def test_population_survives_a_restart(tmp_path):
    seen = []

    def interrupt(line):
        seen.append(line)
        if "done " in line and sum("done " in s for s in seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, log=interrupt)
    saved = json.loads((tmp_path / "evolution.json").read_text())
    finished = [m["id"] for m in saved["members"].values() if m["status"] == "done"]
    assert len(finished) == 5
    evo, report = _run(tmp_path)
    assert report["members"] == 10 and report["cycles"] == 6
    for member_id in finished:  # trained exactly once
        assert len((tmp_path / "runs" / member_id / "calls.log").read_text().splitlines()) == 1
    assert all(evo.state["members"][i]["objective"] == saved["members"][i]["objective"] for i in finished)


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    AgingEvolution.start(_base(), str(tmp_path), population=4, sample=2, cycles=1, seed=0).save()
    with pytest.raises(Exception, match="other settings"):
        AgingEvolution.start(_base(), str(tmp_path), population=5, sample=2, cycles=1, seed=0)


def test_evolve_cli_rejects_bad_settings(tmp_path, capsys):
    from foundry.cli import main
    assert main(["evolve", "--population", "1", "--dir", str(tmp_path / "e")]) == 2
    assert "population >= 2" in capsys.readouterr().err


def test_evolve_cli_with_the_real_trainer(tmp_path, tiny_text, capsys):
    """`foundry evolve` end to end on real (tiny) training runs: every member's objective is the
    val_bpb its own run folder's summary reports, and children carry their stacked mutations."""
    from foundry.cli import main
    from foundry.config import save
    from foundry.io import read_summary
    from tests.conftest import tiny_overrides
    save(load("baselines/tiny.yaml", tiny_overrides(tiny_text, steps=6)), tmp_path / "tiny.yaml")
    code = main(["evolve", "--baseline", str(tmp_path / "tiny.yaml"), "--population", "3", "--sample", "2",
                 "--cycles", "2", "--jobs", "2", "--seed", "1", "--dir", str(tmp_path / "evo"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["members"] == 5 and report["cycles"] == 2
    state = json.loads((tmp_path / "evo" / "evolution.json").read_text())
    finished = [m for m in state["members"].values() if m["objective"] is not None]
    assert len(finished) >= 4  # a mutation may fail to train; the rest are real runs
    for member in finished:
        runs = [d for d in (tmp_path / "evo" / "runs").iterdir() if d.name.startswith(member["id"])]
        (summary,) = [read_summary(d) for d in runs]
        assert summary["status"] == "done" and summary["val_bpb"] == pytest.approx(member["objective"])
    children = [m for m in state["members"].values() if not m["initial"]]
    assert len(children) == 2 and all(len(load(c["config"]).mutations) >= 1 for c in children)
    assert report["best"]["objective"] == min(m["objective"] for m in finished)
