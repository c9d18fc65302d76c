"""What a run folder says after crashes, interrupts and resumes: one metrics row and one TensorBoard
point per step, progress.json with the real fraction and a pid that tells a dead run from a
running one, strict JSON (null for NaN), file modes from the umask, and the thread choice."""
import glob
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from foundry.io import run_status
from foundry.training import loop
from foundry.training.loop import train
from tests.conftest import REPO
from tests.training.test_loop import tiny_cfg

REAL_TRAIN_STEP = loop.train_step


class Crash(Exception):
    """What kill -9 leaves behind, in-process: rows and points written past the last checkpoint,
    no summary, no closing of anything."""


def crash_at(monkeypatch, step: int) -> None:
    def step_or_die(s):
        if s.step == step:
            s.files.metrics.flush()   # a real kill loses at most what was not flushed yet
            s.files.writer.flush()
            s.files.writer.close()    # (stops its thread; a killed process has none left either)
            raise Crash
        return REAL_TRAIN_STEP(s)
    monkeypatch.setattr(loop, "train_step", step_or_die)


def metrics_steps(run) -> tuple[list[int], list[int]]:
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    return [r["step"] for r in rows if "loss" in r], [r["step"] for r in rows if "val_loss" in r]


def tensorboard_points(run) -> list[tuple[str, int]]:
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    points = []
    for path in sorted(glob.glob(os.path.join(run, "events.out.tfevents.*"))):
        for event in LegacyEventFileLoader(path).Load():
            points += [(value.tag, event.step) for value in event.summary.value]
    return points


def val_point_steps(run) -> list[int]:
    """Steps of the first validation tag's points (the tags' names are not this test's business)."""
    points = [(tag, step) for tag, step in tensorboard_points(run) if tag.startswith("val/")]
    first = points[0][0]
    return [step for tag, step in points if tag == first]


def test_one_row_and_one_point_per_step_after_kills_and_resumes(tiny_text, tmp_path, monkeypatch):
    cfg = tiny_cfg(tiny_text, "eval.interval=10", "train.checkpoint_interval=10", steps=50)
    run = tmp_path / "run"
    crash_at(monkeypatch, 7)                      # before the first checkpoint ...
    with pytest.raises(Crash):
        train(cfg, run)
    assert metrics_steps(run)[0] == list(range(1, 8))
    crash_at(monkeypatch, 23)                     # ... then the same command again: a fresh start
    with pytest.raises(Crash):
        train(cfg, run)
    assert metrics_steps(run)[0] == list(range(1, 24)) and 20 in val_point_steps(run)
    crash_at(monkeypatch, 34)                     # resumed from step 20, killed at 34
    with pytest.raises(Crash):
        train(cfg, run, resume=True)
    monkeypatch.setattr(loop, "train_step", REAL_TRAIN_STEP)
    summary = train(cfg, run, resume=True)        # resumed from step 30 to the end
    assert summary["status"] == "done" and summary["steps"] == 50
    train_steps, val_steps = metrics_steps(run)
    assert train_steps == list(range(1, 51)) and val_steps == [10, 20, 30, 40, 50]
    points = tensorboard_points(run)
    assert len(points) == len(set(points)), "a (tag, step) point appears twice"
    assert val_point_steps(run) == [10, 20, 30, 40, 50]
    assert max(s for _, s in points) == 50
    assert not glob.glob(os.path.join(run, ".tmp-*"))


def test_progress_says_how_far_an_interrupted_run_got(tiny_text, tmp_path):
    summary = train(tiny_cfg(tiny_text, steps=25), tmp_path / "run", stop_after_steps=13)
    progress = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert summary["status"] == progress["status"] == "interrupted"
    assert progress["step"] == 13 and progress["fraction"] == pytest.approx(13 / 25)
    assert progress["pid"] == os.getpid() and run_status(tmp_path / "run") == "interrupted"


def test_a_nan_loss_is_written_as_null_with_the_status(tiny_text, tmp_path, monkeypatch):
    def nan_at_3(s):
        loss, lr, grad_norm, stats = REAL_TRAIN_STEP(s)
        return (math.nan if s.step == 3 else loss), lr, grad_norm, stats
    monkeypatch.setattr(loop, "train_step", nan_at_3)
    summary = train(tiny_cfg(tiny_text, steps=6), tmp_path / "run")
    assert summary["status"] == "diverged"

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    on_disk = strict((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["status"] == "diverged" and on_disk["train_loss"] is None
    rows = [strict(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == {**rows[-1], "step": 3, "loss": None}
    strict((tmp_path / "run" / "progress.json").read_text())


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_follow_the_umask(tiny_text, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        train(tiny_cfg(tiny_text, steps=2), tmp_path / "run")
    finally:
        os.umask(previous)
    for name in ("summary.json", "progress.json", "config.yaml", "metrics.jsonl", "checkpoint/config.yaml"):
        assert os.stat(tmp_path / "run" / name).st_mode & 0o777 == mode, name


def test_the_header_says_the_threads_and_why(tiny_text, tmp_path, capsys, monkeypatch):
    train(tiny_cfg(tiny_text, "train.threads=2", steps=2), tmp_path / "a")
    assert "2 threads (train.threads)" in capsys.readouterr().out
    summary = train(tiny_cfg(tiny_text, steps=2), tmp_path / "b")   # the suite sets OMP_NUM_THREADS=1
    assert "1 thread (OMP_NUM_THREADS)" in capsys.readouterr().out and summary["threads"] == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    train(tiny_cfg(tiny_text, steps=2), tmp_path / "c")
    assert " cores free)" in capsys.readouterr().out


def test_status_tells_a_killed_run_from_a_running_one(tiny_text, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": REPO}
    command = [sys.executable, "-m", "foundry.cli", "train", os.path.join(REPO, "baselines", "tiny.yaml"),
               f"data.source={tiny_text}", "model.n_layer=1", "model.n_embd=32", "model.n_head=2",
               "model.block_size=32", "train.batch_size=4", "budget.seconds=120", "--out", str(run)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while run_status(run) != "running" and time.time() < deadline:
            time.sleep(0.1)
        status = subprocess.run([sys.executable, "-m", "foundry.cli", "status", str(run), "--json"], env=env,
                                capture_output=True, text=True)
        assert json.loads(status.stdout)["status"] == "running", status.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((run / "progress.json").read_text())["status"] == "running"   # what the file last said
    assert run_status(run) == "dead"
    table = subprocess.run([sys.executable, "-m", "foundry.cli", "status", str(run)], env=env,
                           capture_output=True, text=True).stdout
    assert f"{run}: dead (pid {proc.pid} is gone" in table
