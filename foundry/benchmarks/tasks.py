"""The task registry and the loop that runs tasks on a model: TASKS, at the end of this file.

    from foundry.benchmarks.tasks import TASKS, run_tasks, task_class
    results = run_tasks(lm, ["mmlu", "gsm8k"], EvalOptions(limit=100))   # name -> result dict

Every task is a class with `name`, `chance` (None when accuracy has no meaning, as for bpb),
`__init__(opts: EvalOptions)` and `evaluate(lm) -> result` (see common.make_result); tasks that
can score completions made elsewhere also have `score_samples(path) -> result`. To add a task:
write a module with its class, import it here and add one line to TASKS.
"""
from __future__ import annotations

import time

from foundry.benchmarks.bpb import BitsPerByte
from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.constitution import Constitution
from foundry.benchmarks.gsm8k import GSM8K
from foundry.benchmarks.humaneval import HumanEval
from foundry.benchmarks.mmlu import MMLU, MMLUValidation
from foundry.benchmarks.preference import Preference
from foundry.benchmarks.probes import MQAR, Addition
from foundry.errors import UserError


def task_class(name: str):
    if name not in TASKS:
        raise UserError(f"unknown task {name!r} (valid: {', '.join(TASKS)})")
    return TASKS[name]


def run_tasks(lm, names: list[str], opts: EvalOptions, log=None) -> dict:
    """Run each named task on `lm`; each result gains `seconds` and `tokens_forwarded`."""
    classes = [task_class(n) for n in names]  # unknown names fail before any work
    results = {}
    for cls in classes:
        start, tokens = time.perf_counter(), lm.tokens_forwarded
        result = cls(opts).evaluate(lm)
        result["seconds"] = round(time.perf_counter() - start, 3)
        result["tokens_forwarded"] = lm.tokens_forwarded - tokens
        results[cls.name] = result
        if log:
            log(f"{cls.name}: {result['metric']} {result['score']:.4f} ({result['n']} items, {result['seconds']:.1f}s)")
    return results


TASKS = {
    "bpb": BitsPerByte,
    "gsm8k": GSM8K,
    "mmlu": MMLU,
    "mmlu_val": MMLUValidation,
    "humaneval": HumanEval,
    "preference": Preference,
    "constitution": Constitution,
    "mqar": MQAR,
    "addition": Addition,
}
