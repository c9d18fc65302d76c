"""The benchmark harness: tasks that rank models, on Foundry checkpoints and Hugging Face folders.

    foundry eval RUN_DIR --tasks bpb,mmlu,gsm8k,humaneval,preference,mqar,addition [--limit N] [--json]

    from foundry.benchmarks import EvalOptions, load_target, rank_score, run_tasks
    lm = load_target("runs/x")
    results = run_tasks(lm, ["mmlu_val", "mqar"], EvalOptions(limit=200))
    score = rank_score(results, cfg.eval.rank)      # higher is better

Files: lm.py (the model interface: batched scoring and generation), targets.py (Foundry / HF
loading), tasks.py (TASKS registry), one module per task (bpb, gsm8k, mmlu, humaneval + sandbox,
preference, probes), common.py (options, data files, result records), results.py (ranking,
table, JSON), cli.py (`foundry eval`). AGENTS.md marks this package frozen: mutations must not
change how models are scored.
"""
from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.results import rank_score
from foundry.benchmarks.tasks import TASKS, run_tasks


def load_target(path, device="cpu", kind="auto", dtype="auto"):
    """See targets.load_target; imported on use so that `import foundry.benchmarks` stays light."""
    from foundry.benchmarks.targets import load_target as load
    return load(path, device=device, kind=kind, dtype=dtype)


__all__ = ["TASKS", "EvalOptions", "load_target", "rank_score", "run_tasks"]
