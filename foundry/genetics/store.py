"""The run folder of `foundry genetics`: state saved after every step, bounded disk, the export.

    OUT/state.json            the recipe, the population, the adapted sigma, the curve, every
                              individual's record (lineage), the best; rewritten atomically
    OUT/individuals/ID.safetensors   the weights of the current population (and of the best)
    OUT/jobs/ID-SPLIT-N/      one scoring trial of N candidates (job.json, summary.json, train.log),
                              removed once read unless one of them failed
    OUT/tb/                   TensorBoard: genetics/best, mean, diversity, sigma, failed
    OUT/best/                 the best individual as a normal checkpoint (checkpoint/ as
                              load_model and train.init_from read it) + lineage.json
    OUT/genetics_summary.json the final summary (also printed with --json)

    store = Store(out_dir); state = store.load(recipe.identity()); store.save(state)
    store.prune(paths_to_keep); store.export(best, base, lineage(archive, best_id))

Every write is atomic (temporary file or folder, then rename), so a kill -9 at any moment leaves
the last saved state whole; files it no longer references are removed on the next prune.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

from foundry.errors import UserError
from foundry.io import atomic_folder, read_json, write_json

STATE_VERSION = 1
STATE_NAME = "state.json"
SUMMARY_NAME = "genetics_summary.json"


class Store:
    def __init__(self, out_dir):
        self.dir = os.path.abspath(os.fspath(out_dir))
        self.individuals = os.path.join(self.dir, "individuals")
        self.jobs = os.path.join(self.dir, "jobs")
        self.tb = os.path.join(self.dir, "tb")
        self.best = os.path.join(self.dir, "best")

    def weights_path(self, ident: str) -> str:
        return os.path.join(self.individuals, f"{ident}.safetensors")

    def load(self, identity: dict) -> dict | None:
        """The saved state, or None for a new run; UserError for a damaged state or another recipe's."""
        path = os.path.join(self.dir, STATE_NAME)
        state = read_json(path, strict=True)
        if state is None:
            return None
        if state.get("version") != STATE_VERSION or "population" not in state:
            raise UserError(f"{path}: not a genetics state of version {STATE_VERSION}")
        if state["recipe"] != json.loads(json.dumps(identity)):
            changed = sorted(k for k in {**state["recipe"], **identity} if state["recipe"].get(k) != identity.get(k))
            raise UserError(f"{path}: this run was started with another recipe ({', '.join(changed)} differ); "
                            "rerun it with the same recipe (only generations may change) or use another --out")
        return state

    def save(self, state: dict) -> None:
        write_json(os.path.join(self.dir, STATE_NAME), {"version": STATE_VERSION, **state})

    def prune(self, keep_paths) -> int:
        """Remove weights files (and leftover temporary files) that `keep_paths` does not name."""
        keep = {os.path.abspath(p) for p in keep_paths if p}
        removed = 0
        if os.path.isdir(self.individuals):
            for name in os.listdir(self.individuals):
                path = os.path.join(self.individuals, name)
                if path not in keep:
                    os.unlink(path)
                    removed += 1
        return removed

    def clear_jobs(self) -> None:
        shutil.rmtree(self.jobs, ignore_errors=True)

    def export(self, best: dict, base: str, lineage: list) -> str:
        """OUT/best: the best individual's weights with the base checkpoint's config and tokenizer."""
        if os.path.isdir(self.best):
            return self.best
        with atomic_folder(self.best) as tmp:
            checkpoint = os.path.join(tmp, "checkpoint")
            os.makedirs(checkpoint)
            shutil.copyfile(best["weights"], os.path.join(checkpoint, "model.safetensors"))
            for name in ("config.yaml", "tokenizer.json"):
                shutil.copyfile(os.path.join(base, name), os.path.join(checkpoint, name))
            shutil.copyfile(os.path.join(base, "config.yaml"), os.path.join(tmp, "config.yaml"))
            write_json(os.path.join(tmp, "lineage.json"), {"best": best["id"], "fitness": best["fitness"],
                                                           "heldout": best.get("heldout"), "base": base,
                                                           "ancestors": lineage})
        return self.best

    def write_summary(self, summary: dict) -> None:
        write_json(os.path.join(self.dir, SUMMARY_NAME), summary)


def lineage(archive: dict, ident: str) -> list[dict]:
    """The records of `ident` and all its ancestors (parents first appear after their children)."""
    out, seen, todo = [], set(), [ident]
    while todo:
        current = todo.pop(0)
        if current in seen or current not in archive:
            continue
        seen.add(current)
        out.append(archive[current])
        todo.extend(archive[current].get("parents", []))
    return out


def curve_row(generation: int, population: list, best: dict | None, diversity: float, sigma, success) -> dict:
    """One generation's line of the curve (the table, TensorBoard, state.json and the summary)."""
    fitness = [ind.fitness for ind in population if ind.status == "scored"]
    return {"generation": generation, "best": max(fitness) if fitness else None,
            "mean": sum(fitness) / len(fitness) if fitness else None, "best_so_far": best["fitness"] if best else None,
            "diversity": diversity, "sigma": sigma, "success_rate": success, "scored": len(fitness),
            "failed": sum(ind.status == "failed" for ind in population)}


COLUMNS = (("generation", "gen", 4), ("best", "best", 11), ("mean", "mean", 11), ("best_so_far", "best so far", 11),
           ("diversity", "diversity", 10), ("sigma", "sigma", 9), ("failed", "failed", 6))


def _cell(value) -> str:
    return "-" if value is None else f"{value:.5g}" if isinstance(value, float) else str(value)


class Reporter:
    """The live table (stderr; on a terminal the current generation's progress is redrawn in place)
    and the TensorBoard curves genetics/{best, mean, best_so_far, diversity, sigma, failed} in `tb`.
    Call it with each generation's row; `status` while a generation is being scored."""

    def __init__(self, tb: str | None, stream=None, history=()):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.writer, self.started, self.live = None, time.time(), False
        if tb:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(tb, purge_step=0)   # a resumed run writes its whole curve again
        self.stream.write(" ".join(f"{title:>{width}}" for _, title, width in COLUMNS) + "\n")
        for row in history:
            self(row)

    def status(self, generation: int, population: list) -> None:
        if not self.tty:
            return
        done = sum(ind.status != "new" for ind in population)
        failed = sum(ind.status == "failed" for ind in population)
        self.stream.write(f"\r\x1b[2K  generation {generation}: {done}/{len(population)} scored"
                          f"{f', {failed} failed' if failed else ''}  ({time.time() - self.started:.0f}s)")
        self.stream.flush()
        self.live = True

    def __call__(self, row: dict) -> None:
        line = " ".join(f"{_cell(row.get(key)):>{width}}" for key, _, width in COLUMNS)
        self.stream.write(("\r\x1b[2K" if self.live else "") + line + "\n")
        self.stream.flush()
        self.live = False
        if self.writer:
            for key in ("best", "mean", "best_so_far", "diversity", "sigma", "failed"):
                if row.get(key) is not None:
                    self.writer.add_scalar(f"genetics/{key}", float(row[key]), row["generation"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
            self.writer = None
