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
import torch

import foundry
from foundry.errors import UserError
from foundry.genetics import cmaes_search, fitness
from foundry.genetics.cmaes_search import STATE_FILE, make_sampler, replay, run_cmaes, tell_values
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


def distance(recipe) -> float:
    """The constructed problem: -squared distance of the recipe's weights from TARGET."""
    return -float(np.sum((np.array(weights(recipe)) - TARGET) ** 2))


def distance_fitness(individuals, fitness_spec, split, sleep=0.0):
    time.sleep(sleep)
    for ind in individuals:
        ind.status, ind.fitness = "scored", distance(ind.merge_recipe)


def child(out_dir: str, section_json: str, marker: str) -> None:
    """Run in a subprocess: the search with a slow evaluator that marks generations it started."""
    spec = parse(json.loads(section_json))

    def evaluate(individuals, fitness_spec, split):
        with open(marker, "a") as f:
            f.write("g\n")
        distance_fitness(individuals, fitness_spec, split, sleep=0.4)
    run_cmaes(spec, out_dir, evaluate=evaluate)


def history(out_dir) -> list:
    with open(os.path.join(out_dir, STATE_FILE)) as f:
        return json.load(f)["history"]


def no_export(monkeypatch):
    monkeypatch.setattr(cmaes_search, "export_best", lambda best, folder, spec: None)


def test_improves_on_a_constructed_problem(runs, tmp_path, monkeypatch):
    no_export(monkeypatch)
    spec = parse(section(runs, generations=25))
    start = distance(spec.genome.recipe(spec.genome.initial()))
    rows = []
    summary = run_cmaes(spec, tmp_path / "out", progress=rows.append, evaluate=distance_fitness)
    assert [r["generation"] for r in rows] == list(range(25)) and summary["scored"] == 150
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
        values = [distance(spec.genome.recipe(x)) for x in xs]
        candidates = [{"x": x.tolist(), "fitness": v} for x, v in zip(xs, values)]
        saved.append({"generation": generation, "candidates": candidates})
        straight.tell(list(zip(xs, tell_values(values))))
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
    code = (f"from tests.genetics.test_cmaes_search import child; "
            f"child({str(out)!r}, {json.dumps(data)!r}, {str(marker)!r})")
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
    rows = []
    more = run_cmaes(parse(section(runs, generations=2)), tmp_path, progress=rows.append, evaluate=distance_fitness)
    assert more["generations"] == 2 and [r["generation"] for r in rows] == [0, 1]    # extending is fine
    with pytest.raises(UserError, match="was searched with another merge section"):
        run_cmaes(parse(section(runs, seed=6)), tmp_path, evaluate=distance_fitness)
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(UserError, match=f"{STATE_FILE}: damaged"):
        run_cmaes(parse(section(runs)), tmp_path, evaluate=distance_fitness)


def test_failed_candidates_are_recorded_and_the_search_goes_on(runs, tmp_path, monkeypatch):
    no_export(monkeypatch)

    def flaky(individuals, fitness_spec, split):
        distance_fitness(individuals, fitness_spec, split)
        for ind in individuals[::2] if split == "search" else []:
            ind.status, ind.fitness, ind.reason = "failed", None, "RuntimeError: boom"
    summary = run_cmaes(parse(section(runs, generations=3)), tmp_path, evaluate=flaky)
    assert summary["curve"][0]["failed"] == 3 and summary["best"]["status"] == "scored"
    assert tell_values([-1.0, None, -3.0]) == [1.0, 4.0, 3.0]
    with pytest.raises(UserError, match="every candidate of a generation failed"):
        tell_values([None, None])


def test_a_raising_plugin_fails_its_candidate_only(runs, tmp_path, monkeypatch):
    calls = []

    def raising(model, cfg, spec, split):          # scored in this process (pool None): every other call fails
        calls.append(split)
        if len(calls) % 2:
            raise RuntimeError("plugin broke\nsecond line")
        return {"fitness": float(len(calls))}
    monkeypatch.setitem(fitness.FITNESS, "raising", fitness.Plugin(raising, lambda s, w: None, "test"))
    spec = parse(section(runs, generations=1, population=4, fitness={"name": "raising"}))
    summary = run_cmaes(spec, tmp_path)
    candidates = history(tmp_path)[0]["candidates"]
    assert [c["status"] for c in candidates] == ["failed", "scored"] * 2
    assert candidates[0]["reason"] == "RuntimeError: plugin broke" and candidates[0]["fitness"] is None
    assert summary["best"]["id"] == "g0000-003" and summary["failed"] == 2 and calls[-1] == "heldout"


def test_a_real_merge_search_end_to_end(runs, tmp_path, shared_data):
    spec = parse(section(runs, method="ties", base_model=runs["base"], population=4, generations=2,
                         parameters={"weight": {"layers": 1}, "density": {"layers": 1}},
                         fitness={"name": "val_bpb", "source": "$FOUNDRY_DATA/tinyshakespeare.txt", "batches": 1}))
    summary = run_cmaes(spec, tmp_path / "evo")
    best = summary["best"]
    model, _, cfg = build_model(best["recipe"])
    assert best["fitness"] == fitness.score(model, cfg, spec.fitness, "search")["fitness"]
    assert best["heldout"] == fitness.score(model, cfg, spec.fitness, "heldout")["fitness"]
    exported, _, _ = foundry.load(summary["export"])          # a normal checkpoint, with its lineage
    assert all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(), model.state_dict().values()))
    lineage = json.loads((tmp_path / "evo" / "best" / "lineage.json").read_text())
    assert lineage["best"] == best["id"] and lineage["heldout"] == best["heldout"]
    assert os.path.isfile(tmp_path / "evo" / "best" / "merge.json") and not os.path.exists(tmp_path / "evo" / "jobs")
    assert max(c["fitness"] for g in history(tmp_path / "evo") for c in g["candidates"]) == best["fitness"]


def test_the_worker_pool_scores_as_this_process_does(runs, tmp_path, shared_data):
    from foundry.genetics.evolve import open_genetics_pool
    data = section(runs, population=4, generations=1, parameters={"weight": {"layers": 1}},
                   fitness={"name": "val_bpb", "source": "$FOUNDRY_DATA/tinyshakespeare.txt", "batches": 1})
    here = run_cmaes(parse(data), tmp_path / "here")
    pool = open_genetics_pool("local", 2, str(tmp_path / "pooled"), 300)
    try:
        pooled = run_cmaes(parse(data), tmp_path / "pooled", pool=pool)
    finally:
        pool.close()
    assert history(tmp_path / "pooled") == history(tmp_path / "here")
    assert pooled["best"]["heldout"] == here["best"]["heldout"]
