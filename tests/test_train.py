"""foundry.train: a run end to end, resume equivalence, divergence, budgets, the run folder."""
import json
import os

import pytest

from foundry import config
from foundry.train import lr_at, train
from tests.conftest import tiny_overrides

BASE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "baselines", "tiny.yaml")


def tiny_cfg(source, *extra, steps=6):
    return config.load(BASE, tiny_overrides(source, steps) + list(extra))


def losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f) if "loss" in r]


def test_run_folder_and_summary(tiny_text, tmp_path, capsys):
    summary = train(tiny_cfg(tiny_text, "eval.interval=3"), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("summary.json", "config.yaml", "metrics.jsonl", "progress.json", "checkpoint/model.safetensors",
                 "checkpoint/state.pt", "checkpoint/tokenizer.json", "checkpoint/config.yaml"):
        assert (run / name).exists(), name
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["status"] == "done" and on_disk["steps"] == 6
    assert on_disk["train_tokens"] == 6 * 4 * 32
    for key in ("val_loss", "val_bpb", "tokens_per_s", "mfu", "params", "flops_per_token", "peak_mem_mb",
                "wall_s", "config_hash"):
        assert on_disk[key] is not None, key
    assert on_disk == summary
    out = capsys.readouterr().out
    assert "\nstatus: done\n" in out and f"config_hash: {summary['config_hash']}" in out
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_loss" in line]
    assert [e["step"] for e in evals] == [3, 6]
    # byte tokenizer: bits per byte is the loss in bits
    assert summary["val_bpb"] == pytest.approx(summary["val_loss"] / 0.6931471805599453)


def test_same_seed_same_run_and_a_few_steps_learn(tiny_text, tmp_path):
    a = train(tiny_cfg(tiny_text, steps=30, ), tmp_path / "a")
    b = train(tiny_cfg(tiny_text, steps=30), tmp_path / "b")
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert a["val_loss"] == b["val_loss"]
    curve = [loss for _, loss in losses(tmp_path / "a")]
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 0.5


@pytest.mark.parametrize("extra", [[], ["train.ema=0.9", "train.grad_accum=2", "model.dropout=0.1"]])
def test_resume_continues_the_same_loss_curve(tiny_text, tmp_path, extra):
    cfg = tiny_cfg(tiny_text, "train.checkpoint_interval=4", *extra, steps=10)
    whole = train(cfg, tmp_path / "whole")
    cut = train(cfg, tmp_path / "cut", stop_after_steps=6)
    assert cut["status"] == "interrupted"
    # the interruption came after the step-4 checkpoint: steps 5-6 are redone on resume
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert resumed["status"] == "done" and resumed["steps"] == 10
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], abs=1e-6)


def test_divergence_stops_the_run(tiny_text, tmp_path):
    summary = train(tiny_cfg(tiny_text, "train.lr=50", "train.min_lr=0", "train.warmup_steps=0",
                             "train.grad_clip=0", steps=40), tmp_path / "run")
    assert summary["status"] == "diverged"
    assert summary["steps"] < 40
    assert json.loads((tmp_path / "run" / "progress.json").read_text())["status"] == "diverged"


def test_token_and_seconds_budgets(tiny_text, tmp_path):
    by_tokens = train(tiny_cfg(tiny_text, "budget.steps=0", "budget.tokens=1000"), tmp_path / "t")
    assert by_tokens["steps"] == 8  # ceil(1000 / (4 * 32))
    by_time = train(tiny_cfg(tiny_text, "budget.steps=0", "budget.seconds=1.5"), tmp_path / "s")
    assert by_time["status"] == "done" and by_time["steps"] > 0


def test_schedule_warms_up_then_decays_to_min_lr():
    cfg = config.from_dict({"train": {"lr": 1.0, "min_lr": 0.1, "warmup_steps": 10}, "budget": {"steps": 110}})
    assert lr_at(cfg, 0, 110) == pytest.approx(0.1)
    assert lr_at(cfg, 9, 110) == pytest.approx(1.0)
    assert lr_at(cfg, 10, 110) == pytest.approx(1.0)
    assert lr_at(cfg, 60, 110) == pytest.approx(0.55)
    assert lr_at(cfg, 110, 110) == pytest.approx(0.1)
    assert lr_at(cfg, 30, None, time_fraction=1.0) == pytest.approx(0.1)


def test_shakespeare_char_trains_on_real_data(shared_data, tmp_path):
    cfg = config.load(os.path.join(os.path.dirname(BASE), "shakespeare_char.yaml"),
                      ["budget.steps=3", "eval.batches=2", "model.n_layer=1"])
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "done"
    resolved = config.load(tmp_path / "run" / "config.yaml")
    assert resolved.model.vocab_size == 65
