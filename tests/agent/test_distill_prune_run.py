"""`foundry run` on a baseline that fine-tunes a trained student under a teacher: a generation
trains a pruned variant (train.prune, masks kept through training) and a hotter distillation
variant with the real trainer, and ranks them like any other trial."""
import glob
import json
import os

import foundry as foundry_api
from agent.ledger import Ledger
from foundry import catalog
from foundry.config import to_dict
from foundry.weights.masks import sparsity
from tests.agent.agent_fixtures import foundry, make_repo, queue
from tests.distill.fixtures import shakespeare_config, trained_run


def test_a_generation_trains_pruned_and_distilled_variants(tmp_path, shared_data):
    teacher = trained_run(tmp_path / "teacher", shared_data, steps=20, sections={"model": {"n_layer": 3}})
    student = trained_run(tmp_path / "student", shared_data, steps=20)
    baseline = to_dict(shakespeare_config(shared_data, 6, init_from=student, distill={"teacher": teacher}))
    baseline["name"] = "tiny"
    repo = make_repo(str(tmp_path / "repo"), baseline)
    queue(repo, "wanda.yaml", "train:\n  prune: {method: wanda, sparsity: 0.3}\n")
    queue(repo, "hot.yaml", "train:\n  distill: {temperature: 4.0, alpha: 0.2}\n")
    done = foundry(repo, "run", "--population", "2", "--workers", "2", "--generations", "1",
                   "--confirm-seeds", "0", "--no-noise-control", "--keep-checkpoints", "all", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = Ledger(os.path.join(repo.working_tree_dir, "experiments", "tiny", "ledger.sqlite"), readonly=True).trials()
    assert trials and all(t["status"] == "done" for t in trials), [(t["id"], t["status"], t["reason"]) for t in trials]
    runs = os.path.join(repo.working_tree_dir, "experiments", "tiny", "gen_0001", "runs")
    (wanda,) = glob.glob(os.path.join(runs, "*wanda*"))[:1]
    model = foundry_api.load(wanda)[0]
    assert 0.28 < sparsity(model)["sparsity"] <= 0.3  # each row loses floor(0.3 x its width)
    (hot,) = glob.glob(os.path.join(runs, "*hot*"))[:1]
    assert catalog.load(os.path.join(hot, "config.yaml")).train.distill.temperature == 4.0
    steps = [json.loads(line) for line in open(os.path.join(hot, "metrics.jsonl")) if '"loss"' in line]
    assert steps and all("distill_soft" in s and "distill_hard" in s for s in steps)
