"""Crash safety of `foundry genetics`: a real `foundry genetics` process killed with SIGKILL (half-way
through scoring a generation, then right after breeding the next one; scoring in the process, or on
a 2-worker pool whose trials die with it), rerun with the same command each time, ends bitwise
where an uninterrupted run of the same recipe and seed ends: the same individuals (ids, parents,
operators, records, fitness), the same curve, the same weights."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from foundry.genetics.evolve import run_genetics
from foundry.genetics.recipe import from_dict
from tests.conftest import REPO
from tests.genetics.ga_fixtures import ga_recipe, ga_setup, write_recipe


def read_state(out) -> dict | None:
    try:
        with open(os.path.join(out, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def kill_when(command, out, condition, timeout_s=300) -> dict:
    """Start the command, SIGKILL its process group the moment the saved state meets `condition`."""
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": REPO})
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = read_state(out)
        if state and condition(state):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return state
        assert proc.poll() is None, f"finished before the kill point: {proc.stderr.read().decode()[-2000:]}"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the kill point never came")


def mid_scoring(state) -> bool:   # generation 1 bred, some of its children scored, some not
    statuses = [p["status"] for p in state["population"] if p["generation"] == 1]
    return state["generation"] == 1 and "new" in statuses and len(set(statuses)) > 1


def just_bred(state) -> bool:      # generation 2 saved, nothing of it scored yet
    return state["generation"] == 2 and all(p["status"] == "new" for p in state["population"] if p["generation"] == 2)


def weights_digest(state) -> dict:
    out = {}
    for p in state["population"]:
        with open(p["weights"], "rb") as f:
            out[p["id"]] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.mark.parametrize("workers,population,kills", [("0", 6, (mid_scoring, just_bred)), ("2", 4, (mid_scoring,))],
                         ids=["in-process", "worker-pool"])
def test_kill_9_then_the_same_command_gives_the_same_generations(tmp_path, workers, population, kills):
    setup = ga_setup(tmp_path)
    data = ga_recipe(setup, population=population, generations=4 if len(kills) > 1 else 2)
    reference = run_genetics(from_dict(data, "ga.yaml"), tmp_path / "reference", workers=0, log=lambda m: None)
    recipe = write_recipe(tmp_path, data)
    out = str(tmp_path / "killed")
    command = [sys.executable, "-m", "foundry.cli", "genetics", recipe, "--out", out, "--workers", workers]
    killed_at = [kill_when(command, out, kill) for kill in kills]
    assert [s["generation"] for s in killed_at] == [1, 2][:len(kills)]
    finished = subprocess.run(command + ["--json"], cwd=REPO, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": REPO})
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming" in finished.stderr
    ours, theirs = read_state(out), read_state(tmp_path / "reference")
    assert ours["archive"] == theirs["archive"]            # every individual of every generation, as recorded
    assert ours["history"] == theirs["history"] and ours["sigma"] == theirs["sigma"]
    assert weights_digest(ours) == weights_digest(theirs)  # bitwise the same final population
    summary = json.loads(finished.stdout)
    assert summary["best"]["id"] == reference["best"]["id"] and summary["best"]["heldout"] == reference["best"]["heldout"]
    assert len(os.listdir(os.path.join(out, "individuals"))) <= population + 1   # no leftovers of the killed runs
