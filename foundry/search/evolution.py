"""Aging (regularized) evolution over configs (Real et al. 2019), asynchronous and restartable.

    evo = AgingEvolution.start(baseline_cfg, "experiments/evolve/x", population=8, sample=3,
                               cycles=20, max_stack=2, seed=0)
    run_evolution(evo, workers, budget_tokens=None)        # or: foundry evolve --baseline ...

The population starts as the baseline plus population-1 single mutations of it. Each cycle
samples `sample` evaluated members at random, takes the best as the parent, and applies 1 to
`max_stack` random mutations on top of its own (mutations stack; lineage recorded). When the
child has trained it joins the population and the OLDEST member leaves — not the worst — which
keeps the search from clinging to one lucky run. A worker never waits for a whole generation.
Everything is in DIR/evolution.json (population, every member, the RNG state), rewritten after
each event: restarted, the search continues with the same population and random stream.
"""
from __future__ import annotations

import os
import random

from foundry.catalog import load
from foundry.config import Config, config_hash, dumps
from foundry.errors import UserError
from foundry.io import atomic_write_text, read_json, write_json
from foundry.mutate import propose
from foundry.runner.driver import drive
from foundry.runner.pool import TrialSpec, WorkerPool
from foundry.search import trials


class AgingEvolution:
    def __init__(self, folder: str, state: dict):
        self.folder, self.state = folder, state
        self.rng = random.Random()
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.requeue = [m for m in state["members"].values() if m["status"] == "running"]

    @property
    def path(self) -> str:
        return os.path.join(self.folder, "evolution.json")

    @classmethod
    def start(cls, baseline: Config, folder: str, population: int = 8, sample: int = 3, cycles: int = 20,
              max_stack: int = 2, seed: int = 0) -> "AgingEvolution":
        """Resume the search in `folder` if there is one (same settings), else seed a new population."""
        settings = {"baseline_hash": config_hash(baseline), "population": population, "sample": sample,
                    "cycles": cycles, "max_stack": max_stack, "seed": seed}
        saved = read_json(os.path.join(folder, "evolution.json"), strict=True)
        if saved is not None:
            if saved["settings"] != settings:
                raise UserError(f"{folder}: holds an evolution with other settings ({saved['settings']}); "
                                "choose another --dir")
            return cls(folder, saved)
        if population < 2 or not 1 <= sample <= population or cycles < 0 or max_stack < 1:
            raise UserError("evolve: need population >= 2, 1 <= sample <= population, cycles >= 0, max_stack >= 1")
        rng = random.Random(seed)
        version, internal, gauss = rng.getstate()
        evo = cls(folder, {"settings": settings, "members": {}, "population": [], "cycles_issued": 0,
                           "rng": [version, list(internal), gauss]})
        evo._add_member(baseline, "baseline", parent=None, initial=True)
        for child, label in propose(baseline, population - 1, rng):
            evo._add_member(child, label, parent="m0000", initial=True)
        evo._save_rng()
        return evo

    # ------------------------------------------------------------------ members
    def _add_member(self, cfg: Config, label: str, parent: str | None, initial: bool) -> dict:
        members = self.state["members"]
        member_id = f"m{len(members):04d}"
        path = os.path.join(self.folder, "configs", f"{member_id}.yaml")
        atomic_write_text(path, dumps(cfg))
        member = {"id": member_id, "label": label, "mutations": list(cfg.mutations), "parent": parent,
                  "config": path, "hash": config_hash(cfg), "status": "new", "objective": None,
                  "initial": initial, "retired": False}
        members[member_id] = member
        if initial:
            self.state["population"].append(member_id)
        return member

    def _save_rng(self) -> None:
        version, internal, gauss = self.rng.getstate()
        self.state["rng"] = [version, list(internal), gauss]

    def evaluated(self) -> list[dict]:
        members = self.state["members"]
        return [members[i] for i in self.state["population"] if members[i]["objective"] is not None]

    def _make_child(self) -> dict | None:
        s = self.state["settings"]
        pool = self.evaluated()
        parent = min(self.rng.sample(pool, min(s["sample"], len(pool))), key=lambda m: m["objective"])
        seen = {m["hash"] for m in self.state["members"].values()}
        for _ in range(20):  # a few draws in case a stack lands on a config already tried
            cfg, labels = load(parent["config"]), []
            for _ in range(self.rng.randint(1, s["max_stack"])):
                proposals = propose(cfg, 1, self.rng)
                if proposals:
                    cfg, label = proposals[0]
                    labels.append(label)
            if labels and config_hash(cfg) not in seen:
                self.state["cycles_issued"] += 1
                self._save_rng()
                return self._add_member(cfg, "+".join(labels), parent=parent["id"], initial=False)
        return None

    # ------------------------------------------------------------------ scheduling
    def next_member(self) -> dict | None:
        if self.requeue:
            return self.requeue.pop(0)
        members, s = self.state["members"], self.state["settings"]
        for member in members.values():
            if member["initial"] and member["status"] == "new":
                member["status"] = "running"
                return member
        initial_pending = any(m["initial"] and m["status"] == "running" for m in members.values())
        if self.state["cycles_issued"] >= s["cycles"] or not self.evaluated():
            return None
        if initial_pending and len(self.evaluated()) < s["sample"]:
            return None  # wait for enough of the first population to be scored
        child = self._make_child()
        if child is not None:
            child["status"] = "running"
        return child

    def report(self, member_id: str, objective: float | None, record: dict) -> None:
        member = self.state["members"][member_id]
        member.update(status="done" if objective is not None else "failed", objective=objective, record=record)
        population = self.state["population"]
        if not member["initial"] and objective is not None:
            population.append(member_id)
            while len(population) > self.state["settings"]["population"]:
                self.state["members"][population.pop(0)]["retired"] = True  # the oldest leaves

    def best(self) -> dict | None:
        done = [m for m in self.state["members"].values() if m["objective"] is not None]
        return min(done, key=lambda m: m["objective"]) if done else None

    def save(self) -> None:
        write_json(self.path, self.state, indent=1)


def run_evolution(evo: AgingEvolution, workers, budget_tokens: int | None = None, timeout_s=None,
                  log=print, command=None) -> dict:
    def next_spec():
        member = evo.next_member()
        if member is None:
            return None
        run_dir = os.path.join(evo.folder, "runs", member["id"])
        overrides = trials.budget_overrides(budget_tokens) if budget_tokens else []
        return TrialSpec(member["id"], member["config"], run_dir, overrides,
                         resume=os.path.isdir(os.path.join(run_dir, "checkpoint")))

    def on_finished(spec, result):
        value = trials.objective(result.summary, spec.out_dir) if result.status == "done" else None
        evo.report(spec.trial_id, value, trials.run_record(result.summary, spec.out_dir))
        member = evo.state["members"][spec.trial_id]
        log(f"  done   {spec.trial_id} ({member['label']}): val_bpb "
            f"{'-' if value is None else f'{value:.4f}'} ({result.status})")

    pool = WorkerPool(workers, timeout_s=timeout_s, **({"command": command} if command else {}))
    drive(pool, next_spec, on_finished, evo.save, log)
    best = evo.best()
    return {"dir": evo.folder, "best": best, "population": [evo.state["members"][i] for i in evo.state["population"]],
            "members": len(evo.state["members"]), "cycles": evo.state["cycles_issued"]}
