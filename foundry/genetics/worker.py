"""Score one individual in a pool worker: the trial command of `foundry genetics`.

    python -m foundry.genetics.worker JOB.json --out DIR      # writes DIR/summary.json
    result = score_individual(individual, base, fitness_spec, "search")   # the same, in process

JOB.json (written by evolve.score_generation): {"individual": Individual as a dict, "base": the
checkpoint folder whose config.yaml and tokenizer.json go with a weights file (None for a
merge_recipe), "fitness": the fitness spec, "split": "search" | "heldout", "device": "auto"}.
The weights file is loaded into the base config's model (foundry.weights.checkpoint.MODEL_KINDS),
or the merge recipe is merged in memory (genome.build_model); then fitness.score runs.
DIR/summary.json (atomic): {"status": "done", "fitness", "scores", "seconds": {load, score}} and
exit 0; a plugin (or a load) that raises writes {"status": "failed", "error": one line} and exits
1, which marks this individual failed while the run goes on.
"""
from __future__ import annotations

import os
import sys
import time

from foundry.errors import ArgumentParser, UserError
from foundry.io import read_json, write_json


def build_model(individual, base: str | None, device: str = "cpu"):
    """(model in eval mode with .tokenizer, cfg) of an Individual."""
    if individual.merge_recipe is not None:
        from foundry.genetics.genome import build_model as merged
        model, _, cfg = merged(individual.merge_recipe, device)
        return model, cfg
    if not base or not individual.weights:
        raise UserError(f"individual {individual.id}: neither weights with a base checkpoint nor a merge recipe")
    from foundry import catalog
    from foundry.data import tokenizer_from_json
    from foundry.weights.checkpoint import MODEL_KINDS
    cfg = catalog.load(os.path.join(base, "config.yaml"))
    with open(os.path.join(base, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = tokenizer_from_json(f.read())
    model = MODEL_KINDS[cfg.model_kind](cfg, individual.weights, device).eval()
    model.tokenizer = tokenizer
    return model, cfg


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300]


def score_individual(individual, base: str | None, fitness_spec: dict, split: str, device: str = "auto") -> dict:
    """{"status": "scored" | "failed", "fitness", "scores", "reason", "seconds"}; never raises for
    a failing model or plugin (that individual fails, the caller goes on)."""
    import torch

    from foundry.genetics import fitness
    from foundry.hardware import pick_device
    started = time.perf_counter()
    try:
        model, cfg = build_model(individual, base, str(pick_device(device, "device")))
        loaded = time.perf_counter()
        with torch.no_grad():
            scores = fitness.score(model, cfg, fitness_spec, split)
    except Exception as e:        # the plugin's or the model's: this individual failed, the run goes on
        return {"status": "failed", "fitness": None, "scores": {}, "reason": one_line(e),
                "seconds": {"total": time.perf_counter() - started}}
    done = time.perf_counter()
    return {"status": "scored", "fitness": scores["fitness"], "scores": scores, "reason": "",
            "seconds": {"load": loaded - started, "score": done - loaded, "total": done - started}}


def main(argv=None) -> int:
    from foundry.genetics.individual import Individual
    parser = ArgumentParser(prog="python -m foundry.genetics.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="the job file (JSON) that evolve.score_generation wrote")
    parser.add_argument("--out", required=True, help="folder for summary.json")
    args = parser.parse_args(argv)
    job = read_json(args.job, strict=True)
    individual = Individual.from_dict(job["individual"])
    result = score_individual(individual, job.get("base"), job["fitness"], job["split"], job.get("device", "auto"))
    summary = {"individual": individual.id, "split": job["split"], "pid": os.getpid(), **result,
               "status": "done" if result["status"] == "scored" else "failed"}
    if result["status"] == "failed":
        summary["error"] = result["reason"]
        print(f"genetics worker: {individual.id} failed: {result['reason']}", file=sys.stderr)
    write_json(os.path.join(args.out, "summary.json"), summary)
    return 0 if result["status"] == "scored" else 1


if __name__ == "__main__":
    from foundry.errors import run_command
    sys.exit(run_command("foundry genetics worker", main, sys.argv[1:]))
