"""Shared pieces of the eval harness: options, data-file lookup, the result record.

    opts = EvalOptions(data_dir="/data", limit=100)
    path = data_path(opts, "gsm8k", "gsm8k/test.jsonl")   # --path gsm8k=FILE wins over --data DIR
    rows = read_jsonl(path, ("question", "answer"))         # foundry.data.jsonl; .gz read transparently
    result = make_result("gsm8k", "acc", 0.12, chance=0.0, items=[...])

Data comes from user paths: `--path TASK=FILE`, else `--data DIR`, else $FOUNDRY_DATA. A missing
or malformed file is a UserError naming the file (and the line, for JSONL/CSV).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from foundry.errors import UserError


@dataclass
class EvalOptions:
    data_dir: str | None = None          # None = $FOUNDRY_DATA
    paths: dict = field(default_factory=dict)   # task name -> file or folder (overrides data_dir)
    limit: int = 0                       # first N items of each task; 0 = all
    shots: int | None = None             # None = the task's default
    seed: int = 1234                     # probes and shot sampling
    max_new_tokens: int | None = None    # None = the task's default
    timeout: float = 10.0                # HumanEval: wall-clock seconds per sample
    workers: int = 2                     # HumanEval: sandbox processes at once
    dpo_beta: float = 0.1                # preference: beta of the implicit DPO reward
    reference: object = None             # preference: a reference LanguageModel, or None
    allow_partial: bool = False          # --samples: score a file that leaves problems out (HumanEval)


def data_root(opts: EvalOptions) -> str:
    root = opts.data_dir or os.environ.get("FOUNDRY_DATA")
    if not root:
        raise UserError("no data folder: pass --data DIR or --path TASK=FILE, or set FOUNDRY_DATA")
    if not os.path.isdir(root):
        raise UserError(f"data folder {root}: not a directory")
    return root


def data_path(opts: EvalOptions, task: str, default_relative: str, folder: bool = False) -> str:
    """The file (or folder) a task reads: --path TASK=... if given, else DATA/default_relative."""
    path = opts.paths.get(task) or os.path.join(data_root(opts), default_relative)
    exists = os.path.isdir(path) if folder else os.path.isfile(path)
    if not exists:
        kind = "folder" if folder else "file"
        raise UserError(f"{task}: {kind} {path} not found (pass --path {task}=... or --data DIR)")
    return path


def limited(items: list, opts: EvalOptions) -> list:
    return items[: opts.limit] if opts.limit and opts.limit > 0 else items


def fit_shots(count_tokens, header: str, shots: list[str], query: str, budget: int) -> tuple[str, int]:
    """header + the last shots that fit in `budget` tokens + query; whole shots are dropped from the left.

    Token counts are summed per piece (exact for byte tokenizers, close for BPE); whatever still does
    not fit is cut from the left by the model's own truncation.
    """
    used = count_tokens(header) + count_tokens(query)
    kept = 0
    for shot in reversed(shots):
        used += count_tokens(shot)
        if used > budget:
            break
        kept += 1
    return header + "".join(shots[len(shots) - kept:]) + query, kept


def centered(score: float, chance: float) -> float:
    """(score - chance) / (1 - chance): 0 = guessing, 1 = perfect, comparable across tasks."""
    return (score - chance) / (1.0 - chance)


def make_result(task: str, metric: str, score: float, chance: float, items: list, **details) -> dict:
    """The record every task returns; `rank_value` is what rankings combine (higher is better)."""
    return {"task": task, "metric": metric, "score": float(score), "chance": chance,
            "centered": centered(score, chance), "rank_value": centered(score, chance),
            "higher_is_better": True, "n": len(items), **details, "items": items}
