"""The scoring trial: `python -m foundry.genetics.worker JOB.json --out DIR` as a real process
(summary.json, exit 1 and a one-line reason for a raising plugin), and evolve.score_generation on
a real local worker pool (2 workers) and on a real one-node Ray cluster (--backend ray), each
giving the same fitness as scoring in this process, a failing individual marked failed."""
import json
import os
import subprocess
import sys

import pytest

from foundry.genetics.evolve import open_genetics_pool, score_generation
from foundry.genetics.individual import Individual
from foundry.genetics.population import init_sources, initial_population
from foundry.genetics.worker import score_individual
from foundry.io import write_json
from tests.conftest import REPO
from tests.genetics.ga_fixtures import ga_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    setup = ga_setup(root)
    sources = init_sources({"from": [setup["runs"]["a"], setup["runs"]["b"]]}, "init")
    people = initial_population(sources, 3, 0.05, 0, lambda ident: str(root / f"{ident}.safetensors"))
    spec = {"name": "val_bpb", "source": setup["corpus"], "batches": 1}
    return {**setup, "base": sources[0], "people": people, "fitness": spec}


def fresh(setup) -> list:
    return [Individual.from_dict(p.to_dict()) for p in setup["people"]]


def worker(job: dict, tmp_path):
    path = tmp_path / "job.json"
    write_json(path, job)
    proc = subprocess.run([sys.executable, "-m", "foundry.genetics.worker", str(path), "--out", str(tmp_path / "o")],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    return proc, json.load(open(tmp_path / "o" / "summary.json"))


def test_the_worker_process_scores_and_reports_a_raising_plugin(setup, tmp_path):
    two = setup["people"][:2]
    job = {"individuals": [p.to_dict() for p in two], "base": setup["base"], "fitness": setup["fitness"],
           "split": "search"}
    proc, summary = worker(job, tmp_path / "good")
    here = [score_individual(p, setup["base"], setup["fitness"], "search") for p in two]
    assert proc.returncode == 0 and summary["status"] == "done" and list(summary["results"]) == [p.id for p in two]
    assert [summary["results"][p.id]["fitness"] for p in two] == [h["fitness"] for h in here]
    assert all(r["seconds"]["score"] > 0 for r in summary["results"].values())
    bad = {**job, "individuals": [two[0].to_dict()],
           "fitness": {"name": "val_bpb", "source": str(tmp_path / "no-such-corpus.txt")}}
    proc, summary = worker(bad, tmp_path / "bad")
    assert proc.returncode == 1 and summary["status"] == "failed" and summary["fitness"] is None
    assert "no-such-corpus.txt" in summary["error"] and "\n" not in summary["error"]


def check_pool_scores(pool, setup, jobs):
    people = fresh(setup)
    people[2].weights = os.path.join(jobs, "missing.safetensors")     # fails to load: that one fails
    seen = []
    score_generation(pool, people, jobs, setup["fitness"], "search", setup["base"],
                     on_result=lambda ind, result: seen.append(ind.id))
    expected = [score_individual(p, setup["base"], setup["fitness"], "search")["fitness"] for p in setup["people"][:2]]
    assert [p.fitness for p in people[:2]] == expected                 # bitwise the in-process scores
    assert people[2].status == "failed" and "missing.safetensors" in people[2].reason
    assert sorted(seen) == sorted(p.id for p in people)
    assert sorted(os.listdir(jobs)) == [f"{people[2].id}-search-1"]    # only the failed share keeps its log


def test_score_generation_on_the_local_pool(setup, tmp_path):
    pool = open_genetics_pool("local", 2, str(tmp_path), timeout_s=300)
    try:
        check_pool_scores(pool, setup, str(tmp_path / "jobs"))
    finally:
        pool.close()


def test_score_generation_on_a_ray_cluster(setup, tmp_path, ray_cluster):
    pool = open_genetics_pool("ray", 2, str(tmp_path), timeout_s=300, address=ray_cluster)
    try:
        check_pool_scores(pool, setup, str(tmp_path / "jobs"))
    finally:
        pool.close()
