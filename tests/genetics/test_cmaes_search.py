"""CMA-ES merge search: it improves on a constructed problem, a killed run resumes to bitwise the
same next generation, failures are recorded and the search goes on, and a real merge end to end."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import foundry
from foundry.errors import UserError
from foundry.genetics import cmaes_search, fitness
from foundry.genetics.cmaes_search import STATE_FILE, make_sampler, replay, run_cmaes, score_in_process, tell_values
from foundry.genetics.genome import build_model, parse
from tests.genetics.merge_fixtures import tiny_runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = [0.8, 0.2, 0.6, 0.3, 0.9, 0.1]        # the per-layer weights of models a and b that score best


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory.mktemp("cmaes-runs"))


def section(runs, **over):
    return {"method": "linear", "models": [runs["a"], runs["b"]], "parameters": {"weight": {}},
            "population": 6, "generations": 12, "sigma": 0.3, "seed": 5, "fitness": {"name": "val_bpb"}, **over}


def weights(recipe) -> list[float]:
    return [w for m in recipe["models"] for w in m["parameters"]["weight"]]


def distance_fitness(recipes, fitness_spec, split, sleep=0.0):
    """The constructed problem: -squared distance of the recipe's weights from TARGET."""
    time.sleep(sleep)
    return [{"status": "scored", "fitness": -float(np.sum((np.array(weights(r)) - TARGET) ** 2)),
             "scores": {}, "reason": ""} for r in recipes]


def child(out_dir: str, section_json: str, marker: str) -> None:
    """Run in a subprocess: the search with a slow evaluator that marks generations it started."""
    spec = parse(json.loads(section_json))

    def evaluate(recipes, fitness_spec, split):
        with open(marker, "a") as f:
            f.write("g\n")
        return distance_fitness(recipes, fitness_spec, split, sleep=0.4)
    run_cmaes(spec, out_dir, evaluate=evaluate)


def history(out_dir) -> list:
    with open(os.path.join(out_dir, STATE_FILE)) as f:
        return json.load(f)["history"]


def no_export(monkeypatch):
    monkeypatch.setattr(cmaes_search, "export_best", lambda recipe, folder: None)


def test_improves_on_a_constructed_problem(runs, tmp_path, monkeypatch):
    no_export(monkeypatch)
    spec = parse(section(runs, generations=25))
    start = distance_fitness([spec.genome.recipe(spec.genome.initial())], None, "search")[0]["fitness"]
    rows = []
    summary = run_cmaes(spec, tmp_path / "out", progress=rows.append, evaluate=distance_fitness)
    assert [r["generation"] for r in rows] == list(range(25)) and summary["candidates"] == 150
    best = summary["best"]
    assert start < -0.5 and best["fitness"] > -0.02      # 25 times closer to the optimum
    assert best["heldout"] == best["fitness"]                             # this evaluator ignores the split
    curve = [r["best_so_far"] for r in rows]
    assert curve == sorted(curve)


def test_replay_restores_the_sampler_exactly(runs):
    spec = parse(section(runs))
    straight = make_sampler(spec, spec.genome.dimension)
    saved = []
    for generation in range(3):
        xs = [straight.ask() for _ in range(straight.population_size)]
        values = distance_fitness([spec.genome.recipe(x) for x in xs], None, "search")
        saved.append({"generation": generation, "candidates": [{"x": x.tolist(), "fitness": v["fitness"]}
                                                               for x, v in zip(xs, values)]})
        straight.tell(list(zip(xs, tell_values([v["fitness"] for v in values]))))
    fresh = make_sampler(spec, spec.genome.dimension)
    replay(fresh, json.loads(json.dumps(saved)))
    assert np.array_equal(fresh.mean, straight.mean) and fresh._sigma == straight._sigma
    assert np.array_equal(fresh.ask(), straight.ask())
    saved[1]["candidates"][0]["x"][0] += 1e-12
    with pytest.raises(UserError, match="generation 1 candidate 0 does not replay"):
        replay(make_sampler(spec, spec.genome.dimension), saved)


def test_kill_9_then_rerun_gives_the_same_generations(runs, tmp_path, monkeypatch):
    no_export(monkeypatch)
    data = section(runs, generations=4)
    run_cmaes(parse(data), tmp_path / "straight", evaluate=distance_fitness)
    out, marker = tmp_path / "killed", tmp_path / "marker"
    code = f"from tests.genetics.test_cmaes_search import child; child({str(out)!r}, {json.dumps(data)!r}, {str(marker)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (marker.exists() and marker.read_text().count("g") >= 3):
        time.sleep(0.05)                 # the third generation has started: two are saved
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(history(out)) == 2
    run_cmaes(parse(data), out, evaluate=distance_fitness)
    assert history(out) == history(tmp_path / "straight")


def test_resume_refuses_another_section_and_a_damaged_state(runs, tmp_path, monkeypatch):
    no_export(monkeypatch)
    run_cmaes(parse(section(runs, generations=1)), tmp_path, evaluate=distance_fitness)
    more = run_cmaes(parse(section(runs, generations=2)), tmp_path, evaluate=distance_fitness)   # extending is fine
    assert more["generations"] == 2
    with pytest.raises(UserError, match="was searched with another merge section"):
        run_cmaes(parse(section(runs, seed=6)), tmp_path, evaluate=distance_fitness)
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(UserError, match=f"{STATE_FILE}: damaged"):
        run_cmaes(parse(section(runs)), tmp_path, evaluate=distance_fitness)


def test_failed_candidates_are_recorded_and_the_search_goes_on(runs, tmp_path, monkeypatch):
    no_export(monkeypatch)

    def flaky(recipes, fitness_spec, split):
        results = distance_fitness(recipes, fitness_spec, split)
        for i in range(0, len(results) if split == "search" else 0, 2):
            results[i] = {"status": "failed", "fitness": None, "scores": {}, "reason": "RuntimeError: boom"}
        return results
    summary = run_cmaes(parse(section(runs, generations=3)), tmp_path, evaluate=flaky)
    assert summary["curve"][0]["failed"] == 3 and summary["best"]["status"] == "scored"
    assert tell_values([-1.0, None, -3.0]) == [1.0, 4.0, 3.0]
    with pytest.raises(UserError, match="every candidate of a generation failed"):
        tell_values([None, None])


def test_a_raising_plugin_fails_its_candidate_only(runs, monkeypatch):
    calls = []

    def raising(model, cfg, spec, split):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("plugin broke\nsecond line")
        return {"fitness": 1.0}
    monkeypatch.setitem(fitness.FITNESS, "raising", fitness.Plugin(raising, lambda s, w: None, "test"))
    recipe = parse(section(runs)).genome.recipe([0.5] * 6)
    first, second = score_in_process([recipe, recipe], {"name": "raising"}, "search")
    assert first == {"status": "failed", "fitness": None, "scores": {}, "reason": "RuntimeError: plugin broke"}
    assert second["status"] == "scored" and second["fitness"] == 1.0


def test_a_real_merge_search_end_to_end(runs, tmp_path, shared_data):
    spec = parse(section(runs, method="ties", base_model=runs["base"], population=4, generations=2,
                         parameters={"weight": {"layers": 1}, "density": {"layers": 1}},
                         fitness={"name": "val_bpb", "source": "$FOUNDRY_DATA/tinyshakespeare.txt", "batches": 1}))
    summary = run_cmaes(spec, tmp_path / "evo")
    best = summary["best"]
    model, _, cfg = build_model(best["recipe"])
    assert best["fitness"] == fitness.score(model, cfg, spec.fitness, "search")["fitness"]
    assert best["heldout"] == fitness.score(model, cfg, spec.fitness, "heldout")["fitness"]
    exported, _, _ = foundry.load(summary["export"])          # a normal checkpoint
    assert exported.state_dict().keys() == model.state_dict().keys()
    assert max(c["fitness"] for g in history(tmp_path / "evo") for c in g["candidates"]) == best["fitness"]
