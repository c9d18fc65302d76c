"""Several processes per run (foundry/training/parallel.py) on CPU with gloo, 2 processes under
torchrun, against 1-process runs of the same config (the same global batch):

- DDP from scratch trains the same loss curve and evaluates the same val_loss: within rtol 1e-4
  (measured: about 1e-6; fp32, the sums of the loss and of the gradients are taken in another order);
- FSDP2 resumes a 1-process checkpoint on 2 processes, writes its own (an embedding of odd rows, so
  padded shards), and 1 process resumes that one: the joined curve is the uninterrupted 1-process
  curve, within the same tolerance;
- rank 0 alone writes the run folder; `foundry.train` stays the public function after
  `python -m foundry.train` ran in the process; bad launches are one-line errors.
"""
import importlib
import json
import os
import runpy
import subprocess
import sys

import pytest

import foundry
from foundry import catalog
from foundry.cli import main
from foundry.errors import UserError
from foundry.evaluation import val_metrics
from foundry.model.gpt import GPT
from foundry.training.launch import without_nproc
from foundry.training.loop import train
from foundry.training.parallel import (
    FullyShard,
    Launch,
    SingleProcess,
    launch_env,
    pick_strategy,
    rank_rows,
    val_share,
)
from tests.conftest import REPO, tiny_overrides

BASE = os.path.join(REPO, "baselines", "tiny.yaml")
RTOL = 1e-4
STEPS = 8


def overrides(source, *extra):
    return [*tiny_overrides(source, STEPS), "model.n_layer=2", "train.grad_accum=2", "train.dtype=fp32",
            "eval.interval=4", "train.checkpoint_interval=2", *extra]


def curve(run_dir) -> tuple[list, list]:
    """([(step, loss)], [(step, val_loss)]) from metrics.jsonl."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return ([(r["step"], r["loss"]) for r in rows if "loss" in r],
            [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r])


def assert_same_curve(got, want):
    """The same steps, and losses and val_losses equal within RTOL."""
    for got_points, want_points in zip(got, want):
        assert [step for step, _ in got_points] == [step for step, _ in want_points]
        assert [v for _, v in got_points] == pytest.approx([v for _, v in want_points], rel=RTOL)


def foundry_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "foundry.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_ddp_on_two_processes_trains_the_one_process_curve(tiny_text, tmp_path):
    over = overrides(tiny_text)
    train(catalog.load(BASE, over), tmp_path / "one")
    done = foundry_cli("train", BASE, *over, "--out", str(tmp_path / "ddp"), "--nproc", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_same_curve(curve(tmp_path / "ddp"), curve(tmp_path / "one"))
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert (summary["strategy"], summary["world_size"], summary["steps"]) == ("ddp", 2, STEPS)
    assert summary["train_tokens"] == STEPS * 4 * 2 * 32   # batch 4 x accumulation 2 x block 32: global
    run = tmp_path / "ddp"
    assert len([p for p in os.listdir(run) if p.startswith("events.out.tfevents")]) == 1   # rank 0 alone
    assert done.stdout.count(f"step {STEPS}/{STEPS} ") == 1 and done.stdout.count("\nstatus: done\n") == 1


def test_fsdp_and_a_change_of_world_size_resume_onto_the_same_curve(tiny_text, tmp_path):
    over = overrides(tiny_text, "model.vocab_size=257")   # odd rows: FSDP pads the shards of the embedding
    cfg = catalog.load(BASE, over)
    train(cfg, tmp_path / "whole")
    cut = tmp_path / "cut"
    assert train(cfg, cut, stop_after_steps=4)["status"] == "interrupted"             # 1 process: steps 1-4
    rung = foundry_cli("train-rung", BASE, *over, "train.strategy=fsdp", "--out", str(cut), "--resume",
                       f"--stop-at-tokens={6 * cfg.tokens_per_step}", "--nproc", "2")    # FSDP on 2: steps 5-6
    assert rung.returncode == 0, rung.stdout + rung.stderr
    paused = json.loads((cut / "summary.json").read_text())
    assert (paused["strategy"], paused["world_size"], paused["steps"]) == ("fsdp", 2, 6)
    assert "resumed from" in rung.stdout and rung.stdout.count("resumed from") == 1
    final = train(cfg, cut, resume=True)                                               # 1 process: 7-8
    assert final["status"] == "done" and final["world_size"] == 1
    losses, evals = curve(cut)
    assert [step for step, _ in evals] == [4, 6, 8]   # the pause evaluated too
    assert_same_curve((losses, [e for e in evals if e[0] != 6]), curve(tmp_path / "whole"))
    assert final["val_loss"] == pytest.approx(json.loads((tmp_path / "whole" / "summary.json").read_text())["val_loss"],
                                              rel=RTOL)


def test_python_m_foundry_train_leaves_the_public_function_alone(tiny_text, tmp_path, monkeypatch):
    with pytest.raises(ImportError, match="runner"):
        importlib.import_module("foundry.train")
    assert callable(foundry.train)
    monkeypatch.setattr(sys, "argv", ["foundry.train", BASE, *tiny_overrides(tiny_text, 2),
                                      "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("foundry.train", run_name="__main__")
    assert exit_.value.code == 0 and (tmp_path / "a" / "summary.json").exists()
    assert foundry.train.__module__ == "foundry"
    summary = foundry.train(catalog.load(BASE, tiny_overrides(tiny_text, 2)), tmp_path / "b")
    assert summary["status"] == "done"


def test_strategies_by_launch_and_config(tiny_text, tmp_path, capsys):
    cfg = catalog.load(BASE, tiny_overrides(tiny_text))
    model = GPT(catalog.load(BASE, [*tiny_overrides(tiny_text), "model.vocab_size=256"]).model)
    assert launch_env({}) == Launch() and launch_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Launch(1, 2, 1)
    for name in ("auto", "ddp", "fsdp", "none"):   # one process: no process group, whatever the setting
        cfg.train.strategy = name
        assert isinstance(pick_strategy(cfg, model, Launch(), "cpu"), SingleProcess)
    cfg.train.strategy = "none"
    with pytest.raises(UserError, match="train.strategy=none with 2 processes"):
        pick_strategy(cfg, model, Launch(0, 2, 0), "cpu")
    cfg.train.strategy, cfg.train.batch_size = "auto", 5
    with pytest.raises(UserError, match="train.batch_size=5 is the global micro-batch"):
        pick_strategy(cfg, model, Launch(0, 2, 0), "cpu")
    assert FullyShard.check(cfg) is None and "train.ema" in FullyShard.check(
        catalog.load(BASE, [*tiny_overrides(tiny_text), "train.ema=0.9"]))
    for bad, message in ((["train.strategy=zero"], "unknown 'zero'"), (["train.strategy=fsdp", "train.ema=0.9"], "train.ema")):
        with pytest.raises(catalog.ConfigError, match=message):
            catalog.load(BASE, [*tiny_overrides(tiny_text), *bad])
    assert main(["train", BASE, *tiny_overrides(tiny_text), "--nproc", "3", "--out", str(tmp_path / "x")]) == 2
    assert "divide evenly among 3 processes" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert without_nproc(["c.yaml", "--nproc", "2", "a=1", "--nproc=3", "--out", "o"]) == ["c.yaml", "a=1", "--out", "o"]


def test_ranks_split_batches_and_the_validation_slice_into_equal_shares(tiny_text):
    assert [rank_rows(8, r, 2) for r in range(2)] == [slice(0, 4), slice(4, 8)]
    cfg = catalog.load(BASE, [*tiny_overrides(tiny_text), "model.vocab_size=256", "train.dtype=fp32"])
    model = GPT(cfg.model).eval()
    block = cfg.model.block_size
    tokens = (list(range(40)) * 10)[:8 * block + 1]   # a slice of 8 windows of 32 (+1), as val_slice cuts it
    whole = val_metrics(model, tokens, cfg, 1.0, "cpu")
    shares = [val_share(tokens, block, 8, rank, 2) for rank in range(2)]
    assert [len(s) for s in shares] == [4 * block + 1] * 2 and shares[1][0] == tokens[4 * block]
    mean = sum(val_metrics(model, s, cfg, 1.0, "cpu")["val_loss"] for s in shares) / 2
    assert mean == pytest.approx(whole["val_loss"], rel=1e-6)
    assert val_share(tokens, block, 8, 0, 3) is tokens   # 8 windows do not split in 3: each rank scores all


def test_torchrun_by_hand_runs_foundry_train_as_a_module(tiny_text, tmp_path):
    """`torchrun --nproc-per-node 2 -m foundry.train CONFIG ...`: torchrun's own launcher, no --nproc."""
    out = tmp_path / "by-hand"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "foundry.train", BASE, *tiny_overrides(tiny_text, 2), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["strategy"], summary["world_size"], summary["steps"]) == ("done", "ddp", 2, 2)
    assert done.stdout.count("\nstatus: done\n") == 1   # rank 1 prints nothing
