"""Score one individual in a pool worker: the trial command of `foundry genetics`.

    python -m foundry.genetics.worker JOB.json --out DIR      # writes DIR/summary.json
    result = score_individual(individual, base, fitness_spec, "search")   # the same, in process

JOB.json (written by evolve.score_generation): {"individuals": [Individual as a dict, ...], "base":
the checkpoint folder whose config.yaml and tokenizer.json go with a weights file (None for a
merge_recipe), "fitness": the fitness spec, "split": "search" | "heldout", "device": "auto"}.
A trial scores a share of the generation, so the seconds that starting Python and importing torch
take are paid once per share, not once per candidate. Each weights file is loaded into the base
config's model (foundry.weights.checkpoint.MODEL_KINDS), or the merge recipe is merged in memory
(genome.build_model); then fitness.score runs. DIR/summary.json (atomic): {"status", "results":
{id: {"status": "scored" | "failed", "fitness", "scores", "reason", "seconds": {load, score}}}}
(with one individual its result also at the top level). A plugin or a load that raises fails that
individual with a one-line reason and the others go on; when every one failed, the status is
"failed" with the first reason as "error" and the exit code is 1.
"""
from __future__ import annotations

import math
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
        if not math.isfinite(scores["fitness"]):   # a diverged model: no rank among the scored ones
            raise ValueError(f"fitness is {scores['fitness']} (not a finite number)")
    except Exception as e:        # the plugin's or the model's: this individual failed, the run goes on
        return {"status": "failed", "fitness": None, "scores": {}, "reason": one_line(e),
                "seconds": {"total": time.perf_counter() - started}}
    done = time.perf_counter()
    return {"status": "scored", "fitness": scores["fitness"], "scores": scores, "reason": "",
            "seconds": {"load": loaded - started, "score": done - loaded, "total": done - started}}


def write_summary(out: str, job: dict, results: dict, status: str | None) -> dict:
    failed = [r["reason"] for r in results.values() if r["status"] == "failed"]
    summary = {"status": status or ("done" if len(failed) < len(results) else "failed"), "split": job["split"],
               "pid": os.getpid(), "results": results}
    if len(results) == 1:   # one individual: its result at the top level too
        summary.update({k: v for k, v in next(iter(results.values())).items() if k != "status"})
    if failed:
        summary["error"] = failed[0]
    write_json(os.path.join(out, "summary.json"), summary)
    return summary


def main(argv=None) -> int:
    from foundry.genetics.individual import Individual
    parser = ArgumentParser(prog="python -m foundry.genetics.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="the job file (JSON) that evolve.score_generation wrote")
    parser.add_argument("--out", required=True, help="folder for summary.json")
    args = parser.parse_args(argv)
    job = read_json(args.job, strict=True)
    results = {}
    for data in job.get("individuals") or [job["individual"]]:
        individual = Individual.from_dict(data)
        results[individual.id] = score_individual(individual, job.get("base"), job["fitness"], job["split"],
                                                  job.get("device", "auto"))
        if results[individual.id]["status"] == "failed":
            print(f"genetics worker: {individual.id} failed: {results[individual.id]['reason']}", file=sys.stderr)
        summary = write_summary(args.out, job, results, "running")   # a trial killed later keeps these
    summary = write_summary(args.out, job, results, None)
    return 0 if summary["status"] == "done" else 1


if __name__ == "__main__":
    from foundry.errors import run_command
    sys.exit(run_command("foundry genetics worker", main, sys.argv[1:]))
