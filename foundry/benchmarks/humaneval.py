"""HumanEval: complete a Python function from its signature and docstring; pass = its tests pass.

    foundry eval RUN_DIR --tasks humaneval [--limit 20] [--timeout 5]
    foundry eval --samples samples.jsonl --tasks humaneval   # upstream format: {"task_id", "completion"}

Data: the upstream HumanEval.jsonl.gz (task_id, prompt, canonical_solution, test, entry_point), from
DATA/humaneval/HumanEval.jsonl.gz or --path humaneval=FILE. The model continues the prompt greedily
until a line starts a new top-level statement (the Codex stop sequences); the program
prompt + completion + test + `check(entry_point)` runs in the sandbox (see sandbox.py), one process
per sample. Several samples per task (from --samples) give the unbiased pass@k estimator of Chen et
al. 2021 for every k that all tasks have enough samples for; the score is pass@1. A --samples file
must cover every problem, as published pass@k numbers do (a pass@1 over the problems a model got
through is not comparable); --allow-partial scores one that does not, and the result says so.
"""
from __future__ import annotations

import os

from foundry.benchmarks.common import EvalOptions, data_path, limited, make_result
from foundry.benchmarks.sandbox import SandboxLimits, run_programs
from foundry.data.jsonl import read_jsonl
from foundry.errors import UserError

FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
KS = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples passes) from n samples of which c pass.

    1 - C(n - c, k) / C(n, k), computed as a running product so that large n does not overflow.
    """
    if not 0 <= c <= n or k <= 0 or k > n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 0 < k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def load_problems(path: str) -> list[dict]:
    problems = read_jsonl(path, FIELDS)
    for p in problems:
        for key in FIELDS:
            if not isinstance(p[key], str):
                raise UserError(f"{path}:{p['_line']}: field {key!r} must be a string")
    return problems


def build_program(problem: dict, completion: str) -> str:
    """What the sandbox runs; a sample passes when this runs to the end."""
    return (problem["prompt"] + completion + "\n\n" + problem["test"] + "\n\n"
            + f"check({problem['entry_point']})\n")


class HumanEval:
    name = "humaneval"
    chance = 0.0
    default_max_new_tokens = 384

    def __init__(self, opts: EvalOptions):
        self.opts = opts
        self.limits = SandboxLimits(timeout=opts.timeout)

    def problems(self) -> list[dict]:
        self.path = data_path(self.opts, self.name, os.path.join("humaneval", "HumanEval.jsonl.gz"))
        return load_problems(self.path)

    def check(self, pairs: list[tuple[dict, str]]) -> list[dict]:
        """Run every (problem, completion) in the sandbox; one item record each."""
        programs = [build_program(p, c) for p, c in pairs]
        records = run_programs(programs, self.limits, workers=self.opts.workers)
        return [{"task_id": p["task_id"], "passed": r["passed"], "status": r["status"], "error": r["error"],
                 "seconds": r["seconds"], "completion": c} for (p, c), r in zip(pairs, records)]

    def evaluate(self, lm) -> dict:
        problems = limited(self.problems(), self.opts)
        max_new = self.opts.max_new_tokens or self.default_max_new_tokens
        completions = lm.generate([p["prompt"] for p in problems], max_new, STOP)
        return self.result(self.check(list(zip(problems, completions))))

    def result(self, items: list[dict], **details) -> dict:
        per_task = {}
        for item in items:
            per_task.setdefault(item["task_id"], []).append(item["passed"])
        fewest = min(len(v) for v in per_task.values())
        estimates = {f"pass@{k}": sum(pass_at_k(len(v), sum(v), k) for v in per_task.values()) / len(per_task)
                     for k in KS if k <= fewest}
        statuses = {}
        for item in items:
            statuses[item["status"]] = statuses.get(item["status"], 0) + 1
        return make_result(self.name, "pass@1", estimates["pass@1"], self.chance, items,
                           problems=len(per_task), samples_per_problem=fewest, statuses=statuses,
                           **estimates, **details)

    def score_samples(self, path: str) -> dict:
        """Score completions made elsewhere (several per task_id allowed), like upstream's evaluator."""
        problems = {p["task_id"]: p for p in self.problems()}
        pairs = []
        for record in read_jsonl(path, ("task_id", "completion")):
            if record["task_id"] not in problems:
                raise UserError(f"{path}:{record['_line']}: unknown task_id {record['task_id']!r} "
                                f"(not in {self.path})")
            if not isinstance(record["completion"], str):
                raise UserError(f"{path}:{record['_line']}: completion must be a string")
            pairs.append((problems[record["task_id"]], record["completion"]))
        missing = [t for t in problems if t not in {p["task_id"] for p, _ in pairs}]
        if missing and not self.opts.allow_partial:
            shown = ", ".join(missing[:3]) + (f" +{len(missing) - 3} more" if len(missing) > 3 else "")
            raise UserError(f"{path}: no sample for {len(missing)} of the {len(problems)} problems ({shown}); "
                            "pass@k over part of HumanEval is not comparable with published numbers: "
                            "pass --allow-partial to score it anyway")
        return self.result(self.check(limited(pairs, self.opts)), samples=path, problems_total=len(problems),
                           partial=bool(missing))
