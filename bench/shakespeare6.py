"""The trained model the distillation and pruning benches share: baselines/shakespeare_char.yaml
with 6 layers (model.n_layer=6) at its full budget of 2000 steps, trained once into
WORK/teacher-2000 and reused (a finished run is never retrained). --teacher-steps N in the benches
trains a cheaper one (WORK/teacher-N) for a quick look at the scripts.

    from shakespeare6 import trained_teacher, quiet
    path = trained_teacher("experiments/bench_distill_prune")
"""
import contextlib
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from foundry import catalog  # noqa: E402
from foundry.io import read_summary  # noqa: E402
from foundry.training.loop import train  # noqa: E402

BASELINE = os.path.join(REPO, "baselines", "shakespeare_char.yaml")
TEACHER = ["model.n_layer=6"]


@contextlib.contextmanager
def quiet():
    """Silence a run's progress lines; the benches print their own figures."""
    old, sys.stdout = sys.stdout, open(os.devnull, "w")
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = old


def trained(cfg, out) -> dict:
    """The summary of `cfg` trained into `out`, training it only if it has not finished before."""
    summary = read_summary(out)
    if summary and summary.get("status") == "done":
        return summary
    with quiet():
        summary = train(cfg, out, resume=os.path.isdir(os.path.join(out, "checkpoint")))
    if summary["status"] != "done":  # interrupted (it resumes next time) or diverged: no figures from it
        raise SystemExit(f"{out}: {summary['status']}")
    return summary


def trained_teacher(work: str, steps: int = 2000) -> str:
    out = os.path.join(work, f"teacher-{steps}")
    summary = trained(catalog.load(BASELINE, [*TEACHER, f"budget.steps={steps}"]), out)
    print(f"teacher {out}: shakespeare_char {' '.join(TEACHER)}, {summary['steps']} steps, "
          f"{summary['params']:,} params, val_loss {summary['val_loss']:.4f}, val_bpb {summary['val_bpb']:.4f}, "
          f"wall {summary['wall_s']:.0f} s", flush=True)
    return out
