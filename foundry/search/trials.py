"""What search code needs from a finished run: its metric, its compute, QPC, and a table.

    from foundry.search import trials
    trials.budget_overrides(200_000)             # train exactly this many tokens
    trials.objective(summary, run_dir, eval_task=None)  # value to minimise (val_bpb, or -task score)
    trials.qpc(summary, run_dir)                 # loss improvement per FLOP
    print(trials.table(rows, columns))

QPC (quality per compute) = (ln V - val_loss) / train_flops: how much the validation loss fell
below that of an untrained uniform predictor over the V-token vocabulary, per training FLOP.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import yaml

from foundry.config import Config
from foundry.errors import UserError


def full_budget_tokens(cfg: Config) -> int:
    """The config's own budget in tokens (a wall-clock budget has none)."""
    steps = cfg.max_steps()
    if steps is None:
        raise UserError(f"{cfg.name}: search needs a budget in tokens or steps, not seconds")
    return steps * cfg.tokens_per_step


def budget_overrides(tokens: int) -> list[str]:
    return [f"budget.tokens={int(tokens)}", "budget.steps=0", "budget.seconds=0"]


def run_vocab_size(run_dir: str) -> int | None:
    """The resolved vocab size the trainer wrote into RUN/config.yaml."""
    try:
        with open(os.path.join(run_dir, "config.yaml"), encoding="utf-8") as f:
            return int(yaml.safe_load(f)["model"]["vocab_size"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def qpc(summary: dict | None, run_dir: str) -> float | None:
    vocab = run_vocab_size(run_dir)
    if not summary or summary.get("val_loss") is None or not summary.get("train_flops") or not vocab:
        return None
    return (math.log(vocab) - summary["val_loss"]) / summary["train_flops"]


def check_eval_task(task: str) -> None:
    from foundry.benchmarks.tasks import task_class
    task_class(task)  # UserError listing the tasks for an unknown name


def eval_task_score(run_dir: str, task: str) -> float:
    """A run's checkpoint on a benchmark task via `foundry eval --json`: its rank value (higher is better)."""
    proc = subprocess.run([sys.executable, "-m", "foundry.cli", "eval", run_dir, "--tasks", task, "--json"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"foundry eval {task} on {run_dir} failed: {proc.stderr.strip()[-300:]}")
    entry = json.loads(proc.stdout)["tasks"][task]
    return float(entry["rank_value"])  # centered accuracy, or -bpb: higher is better for every task


def objective(summary: dict | None, run_dir: str, eval_task: str | None = None) -> float | None:
    """The value a search minimises, or None when the run did not finish."""
    if not summary or summary.get("status") != "done" or summary.get("val_bpb") is None:
        return None
    if eval_task:
        return -eval_task_score(run_dir, eval_task)
    return float(summary["val_bpb"])


def run_record(summary: dict | None, run_dir: str) -> dict:
    """The numbers a search keeps about one finished run."""
    s = summary or {}
    return {"status": s.get("status", "failed"), "val_loss": s.get("val_loss"), "val_bpb": s.get("val_bpb"),
            "train_tokens": s.get("train_tokens", 0), "train_flops": s.get("train_flops", 0),
            "tokens_per_s": s.get("tokens_per_s"), "wall_s": s.get("wall_s"), "qpc": qpc(summary, run_dir)}


def fmt(value, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and spec:
        return format(value, spec)
    return str(value)


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Columns are (key, header, format spec); missing values print as '-'."""
    cells = [[h for _, h, _ in columns]] + [[fmt(r.get(k), spec) for k, _, spec in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
