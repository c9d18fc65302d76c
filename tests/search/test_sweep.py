"""`foundry sweep`: ASHA over a fake trainer (fast), restart after an interrupt, promotion in git,
a rung pause that resumes onto the full run, and one end-to-end sweep with the real trainer."""
import json
import os
import sqlite3
import sys

import git
import pytest

from foundry.catalog import from_dict, load
from foundry.cli import main
from foundry.config import save
from foundry.runner.pool import plan_workers
from foundry.search import sweep
from foundry.training.rung import rung_train_main
from tests.conftest import tiny_overrides

FAKE = [sys.executable, os.path.join(os.path.dirname(__file__), "fake_trainer.py")]
LABELS = ["lr:x0.5", "lr:x2", "depth:plus1"]


def _baseline(folder):
    path = os.path.join(folder, "baseline.yaml")
    save(from_dict({"name": "base", "model": {"block_size": 100}, "train": {"lr": 0.003, "min_lr": 0.0003, "batch_size": 1},
                    "budget": {"tokens": 2700}}), path)
    return path


def _sweep(tmp_path, log=lambda *a: None, **kw):
    return sweep.run_sweep(_baseline(str(tmp_path)), LABELS, str(tmp_path / "s"), plan_workers(2, gpus=[]),
                           sweep.AshaOptions(grace=100, eta=3, top_k=2), seeds=2, log=log, command=FAKE, **kw)


def test_asha_sweep_ranks_continues_checkpoints_and_confirms(tmp_path):
    report = _sweep(tmp_path)
    assert report["budgets"] == [100, 300, 900, 2700]
    assert report["winner"] == "lr:x2"  # the fake objective is best at lr 0.006
    rows = {r["label"]: r for r in report["ranking"]}
    assert rows["baseline"]["n"] == 2 and rows["lr:x2"]["n"] == 2 and rows["lr:x2"]["delta"] < 0
    assert rows["lr:x2"]["qpc"] > 0 and rows["lr:x2"]["train_flops"] == 2.7e6
    calls = (tmp_path / "s" / "runs" / "t02-lr_x2" / "calls.log").read_text().splitlines()
    assert "--stop-at-tokens=100" in calls[0] and "--resume" not in calls[0]
    assert all("--resume" in c and "budget.tokens=2700" in c for c in calls[1:])  # continued, same schedule
    assert report["total_flops"] < 0.8 * 8 * 2.7e6  # below 4 trials x 2 seeds at the full budget
    again = _sweep(tmp_path)  # finished search: nothing is trained again
    assert again["jobs"] == report["jobs"] and again["winner"] == "lr:x2"


def test_interrupted_sweep_resumes_without_rerunning(tmp_path):
    seen = []

    def interrupt_after_three(line):  # Ctrl-C while other trials run
        seen.append(line)
        if "done " in line and sum("done " in s for s in seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path, log=interrupt_after_three)
    db = sqlite3.connect(tmp_path / "s" / "ledger.sqlite")  # the rung state, as another process sees it
    jobs = dict(db.execute("SELECT id, status FROM jobs").fetchall())
    finished = {job_id for job_id, status in jobs.items() if status != "running"}
    assert len(finished) == 3 and "running" in jobs.values()
    rungs = db.execute("SELECT trial, rung, objective FROM jobs WHERE run = trial AND status = 'done'").fetchall()
    assert len(rungs) == 3 and all(objective > 0 for _, _, objective in rungs)
    db.close()
    report = _sweep(tmp_path)
    assert report["winner"] == "lr:x2"
    for job_id in finished:  # finished jobs ran once: one line per rung in their calls.log
        run = job_id.split("@")[0]
        assert len((tmp_path / "s" / "runs" / run / "calls.log").read_text().splitlines()) <= 4


def _plain_sweep(tmp_path, labels, seeds=1):
    """Every trial at the full budget, `seeds` seeds each (no ASHA)."""
    return sweep.run_sweep(_baseline(str(tmp_path)), labels, str(tmp_path / "s"), plan_workers(2, gpus=[]),
                           seeds=seeds, log=lambda *a: None, command=FAKE)


def test_request_mismatch_and_bad_targets_are_user_errors(tmp_path):
    report = _plain_sweep(tmp_path, ["lr:x2"])
    assert report["budgets"] == [2700] and report["jobs"] == 2 and report["winner"] == "lr:x2"
    (variant,) = [r for r in report["ranking"] if r["label"] == "lr:x2"]
    assert variant["delta"] < 0 and not variant["significant"] and "ci95" not in variant  # 1 seed: no interval
    with pytest.raises(sweep.UserError, match="different search"):
        _plain_sweep(tmp_path, ["lr:x0.5"])
    assert sweep.parse_targets(["lr"]) == ["lr:x0.5", "lr:x0.7", "lr:x1.4", "lr:x2"]
    assert sweep.parse_targets(["lr", "x3"]) == ["lr:x3"]        # a factor type takes any factor
    with pytest.raises(sweep.UserError, match="valid: x0.5"):
        sweep.parse_targets(["lr", "fast"])
    assert main(["sweep", "nope", "--dir", str(tmp_path / "x")]) == 2
    assert main(["sweep", "lr", "x2", "--promote", "--seeds", "1", "--dir", str(tmp_path / "x")]) == 2
    assert main(["sweep", "lr", "x2", "--eval-task", "nope", "--dir", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_promote_commits_only_the_baseline(tmp_path):
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as w:
        w.set_value("user", "name", "t").set_value("user", "email", "t@t")
    base = _baseline(str(tmp_path))
    (tmp_path / "other.txt").write_text("a\n")
    repo.index.add([base, str(tmp_path / "other.txt")])
    repo.index.commit("init")
    (tmp_path / "other.txt").write_text("edited, not staged\n")
    old_hash = sweep.check_promotable(base)
    report = _plain_sweep(tmp_path, ["lr:x2", "lr:x0.5"], seeds=2)
    sha = sweep.promote_winner(report, base, old_hash, log=lambda *a: None)
    commit = repo.commit(sha)
    assert commit.message.startswith("promote base: lr:x2 (val_bpb ")
    assert list(commit.stats.files) == ["baseline.yaml"]
    promoted = load(base)
    assert promoted.train.lr == pytest.approx(0.006) and promoted.mutations == ["lr:x2"]
    assert (tmp_path / "other.txt").read_text() == "edited, not staged\n"


def test_rung_pause_then_resume_equals_one_full_run(tmp_path, tiny_text):
    cfg = load("baselines/tiny.yaml", tiny_overrides(tiny_text, steps=6))
    path = tmp_path / "c.yaml"
    save(cfg, path)
    total = 6 * cfg.tokens_per_step
    assert rung_train_main([str(path), "--out", str(tmp_path / "a"), f"--stop-at-tokens={total // 3}"]) == 0
    paused = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert paused["status"] == "done" and paused["rung_stop"] and paused["train_tokens"] == total // 3
    assert rung_train_main([str(path), "--out", str(tmp_path / "a"), "--resume", f"--stop-at-tokens={total}"]) == 0
    assert rung_train_main([str(path), "--out", str(tmp_path / "b"), f"--stop-at-tokens={total}"]) == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab")
    assert a["train_tokens"] == b["train_tokens"] == total
    assert a["val_bpb"] == pytest.approx(b["val_bpb"], abs=1e-6)


def test_sweep_cli_end_to_end_with_the_real_trainer(tmp_path, tiny_text, capsys):
    cfg = load("baselines/tiny.yaml", tiny_overrides(tiny_text, steps=6))
    save(cfg, tmp_path / "tiny.yaml")
    code = main(["sweep", "lr", "x2", "--baseline", str(tmp_path / "tiny.yaml"), "--jobs", "2",
                 "--dir", str(tmp_path / "s"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["label"] for r in report["ranking"]} == {"baseline", "lr:x2"}
    assert all(r["metric"] > 0 and r["tokens_per_s"] > 0 and r["qpc"] is not None for r in report["ranking"])
    metrics = {r["label"]: r["metric"] for r in report["ranking"]}
    assert metrics["baseline"] != metrics["lr:x2"]  # two different trainings, not one copied
    assert report["winner"] == min(metrics, key=metrics.get)  # val_bpb: the lowest wins
    assert report["lower_is_better"] is True


def test_eval_task_ranking_promotes_the_variant_that_scores_higher(tmp_path, tiny_text):
    """The success path of `sweep --eval-task --promote` with the real trainer and `foundry eval`:
    a learning rate too low to learn much in 12 steps loses to twice that rate on every seed, so the
    variant's bpb task score is higher (better) and it is committed."""
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as w:
        w.set_value("user", "name", "t").set_value("user", "email", "t@t")
    cfg = load("baselines/tiny.yaml", tiny_overrides(tiny_text, steps=12) + ["train.lr=3e-4", "train.min_lr=3e-5"])
    cfg.name = "base"
    path = str(tmp_path / "base.yaml")
    save(cfg, path)
    repo.index.add([path])
    repo.index.commit("init")
    code = main(["sweep", "lr", "x2", "--baseline", path, "--eval-task", "bpb", "--seeds", "2", "--promote",
                 "--min-delta", "0", "--alpha", "0.16", "--jobs", "2", "--dir", str(tmp_path / "s"), "--json"])
    assert code == 0
    commit = repo.head.commit
    assert commit.message.startswith("promote base: lr:x2 (bpb ")
    before, after = (float(line.split(": ")[1]) for line in commit.message.splitlines()
                     if line.startswith(("Foundry-Before:", "Foundry-After:")))
    assert after > before  # task scores: higher is better, and the winner is higher
    assert load(path).train.lr == pytest.approx(6e-4)


def test_sweep_on_a_ray_cluster_ranks_like_the_local_pool(tmp_path, ray_cluster):
    """`--backend ray`: the same trials as Ray actors on the cluster, the same ranking."""
    base = _baseline(str(tmp_path))
    args = (base, ["lr:x2"])
    local = sweep.run_sweep(*args, str(tmp_path / "local"), plan_workers(2, gpus=[]), None, seeds=1, command=FAKE)
    remote = sweep.run_sweep(*args, str(tmp_path / "ray"), plan_workers(2, gpus=[]), None, seeds=1, command=FAKE,
                             backend="ray", address=ray_cluster)
    assert remote["winner"] == local["winner"] == "lr:x2"
    assert [(r["label"], r["metric"]) for r in remote["ranking"]] == [(r["label"], r["metric"]) for r in local["ranking"]]
    assert "==== " in (tmp_path / "ray" / "runs" / os.listdir(tmp_path / "ray" / "runs")[0] / "train.log").read_text()
