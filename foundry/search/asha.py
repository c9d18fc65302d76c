"""ASHA (asynchronous successive halving) over rungs of a token budget, then deep confirmation.

    budgets = rung_budgets(grace=50_000, eta=3, max_budget=1_350_000)   # [50k, 150k, 450k, 1.35M]
    search = AshaSearch(budgets, eta=3, trials=[{"id": "t0", "label": "baseline", "config": "a.yaml",
                                                 "seed": 1337}, ...], top_k=2, seeds=2)
    job = search.next_job()          # {"id", "trial", "rung", "budget", "seed", "run", ...} or None
    search.report(job["id"], objective, record)      # objective: lower is better; None = failed
    AshaSearch.from_dict(search.to_dict())           # the whole state is JSON (see driver.py)

Rung k trains a trial to budgets[k] tokens. Whenever a worker is free: promote a trial that is in
the top 1/eta of the trials finished at its rung and not promoted yet (highest rung first), else
start a new trial at rung 0 (Li et al., "A System for Massively Parallel Hyperparameter Tuning").
A promoted trial resumes its own checkpoint with the larger budget. Once nothing can start any
more, the rung's best is promoted anyway, so at least one trial reaches the full budget.
Deep confirmation: the top_k trials (and any label in `always_confirm`, e.g. the baseline) are
brought to the full budget and re-run with seeds-1 further seeds; the winner has the best mean.
"""
from __future__ import annotations

import math

from foundry.search import stats


def rung_budgets(grace: int, eta: float, max_budget: int) -> list[int]:
    """grace * eta^k, then max_budget itself. A rung closer than sqrt(eta) to the last one is dropped:
    it would cost a checkpoint round-trip and rank almost exactly as the full budget does."""
    if grace <= 0 or max_budget <= 0 or eta <= 1:
        raise ValueError(f"ASHA needs grace > 0, max budget > 0 and eta > 1 (got {grace}, {max_budget}, {eta})")
    budgets, b = [], float(grace)
    while b * math.sqrt(eta) <= max_budget:
        budgets.append(int(round(b)))
        b *= eta
    return budgets + [int(max_budget)]


class AshaSearch:
    def __init__(self, budgets, eta, trials, top_k=2, seeds=2, always_confirm=("baseline",)):
        self.budgets, self.eta = [int(b) for b in budgets], eta
        self.top_k, self.seeds, self.always_confirm = top_k, seeds, list(always_confirm)
        self.trials = {t["id"]: {**t, "rungs": dict(t.get("rungs", {}))} for t in trials}
        self.jobs: list[dict] = []
        self.confirm: dict[str, list[int]] | None = None  # trial id -> seeds, fixed when phase 2 starts
        self.requeue: list[dict] = []

    # ------------------------------------------------------------------ state
    @property
    def top(self) -> int:
        return len(self.budgets) - 1

    def _rung_results(self, trial) -> dict[int, float | None]:
        return {int(k): v for k, v in trial["rungs"].items()}

    def _reached(self, trial) -> int:
        """Highest rung the trial finished (-1: none)."""
        return max(self._rung_results(trial), default=-1)

    def _running(self, trial_id=None) -> list[dict]:
        return [j for j in self.jobs if j["status"] == "running" and trial_id in (None, j["trial"])]

    def _failed(self, trial) -> bool:
        return any(v is None for v in trial["rungs"].values())

    def _job(self, trial, rung, phase, seed=None, run=None) -> dict:
        seed = trial["seed"] if seed is None else seed
        suffix = f"r{rung}" if phase == "rung" else f"confirm-s{seed}"
        job = {"id": f"{trial['id']}@{suffix}", "trial": trial["id"], "phase": phase, "rung": rung,
               "budget": self.budgets[rung], "seed": seed, "run": run or trial["id"], "config": trial["config"],
               "status": "running", "objective": None, "record": {}, "flops": 0.0, "tokens": 0}
        self.jobs.append(job)
        return job

    # ------------------------------------------------------------------ decisions
    def next_job(self) -> dict | None:
        """The next job to run, marked running; None when nothing can start now."""
        if self.requeue:
            return self.requeue.pop(0)
        return self._next_promotion() or self._next_new_trial() or self._next_confirmation()

    def _draining(self, rung: int) -> bool:
        """No trial can still join rung `rung`: none is waiting to start and none runs below it."""
        waiting = any(self._reached(t) < 0 and not self._running(t["id"]) for t in self.trials.values())
        return not waiting and not any(j["phase"] == "rung" and j["rung"] <= rung for j in self._running())

    def _next_promotion(self) -> dict | None:
        for rung in range(self.top - 1, -1, -1):
            finished = [t for t in self.trials.values() if rung in self._rung_results(t)]
            ranked = sorted((t for t in finished if self._rung_results(t)[rung] is not None),
                            key=lambda t: self._rung_results(t)[rung])
            quota = len(finished) // self.eta
            if quota < 1 and ranked and self._draining(rung):
                quota = 1
            for trial in ranked[:int(quota)]:
                if self._reached(trial) == rung and not self._running(trial["id"]):
                    return self._job(trial, rung + 1, "rung")
        return None

    def _next_new_trial(self) -> dict | None:
        for trial in self.trials.values():
            if self._reached(trial) < 0 and not self._running(trial["id"]):
                return self._job(trial, 0, "rung")
        return None

    def _next_confirmation(self) -> dict | None:
        if self._running() and self.confirm is None:
            return None  # ASHA still busy: its results decide who is confirmed
        if self.confirm is None:
            self.confirm = {t["id"]: [t["seed"] + i for i in range(self.seeds)] for t in self._candidates()}
        issued = {j["id"] for j in self.jobs}
        live = [(self.trials[tid], seeds) for tid, seeds in self.confirm.items() if not self._failed(self.trials[tid])]
        for trial, _ in live:
            if self._reached(trial) < self.top and f"{trial['id']}@confirm-s{trial['seed']}" not in issued:
                return self._job(trial, self.top, "confirm")  # continue its own run to the full budget
        # further seeds are fresh runs, issued seed-major (every trial's 2nd seed before any 3rd) so a
        # search cut short still compares every trial over the same seeds
        for i in range(1, self.seeds):
            for trial, seeds in live:
                if f"{trial['id']}@confirm-s{seeds[i]}" not in issued:
                    return self._job(trial, self.top, "confirm", seeds[i], run=f"{trial['id']}-seed{seeds[i]}")
        return None

    def _candidates(self) -> list[dict]:
        alive = [t for t in self.trials.values() if not self._failed(t) and self._reached(t) >= 0]
        ranked = sorted(alive, key=self._rank_key)
        chosen = ranked[:self.top_k]
        return chosen + [t for t in ranked[self.top_k:] if t["label"] in self.always_confirm]

    def _rank_key(self, trial):
        """Failed trials last; then the highest rung reached; then the objective there."""
        reached = self._reached(trial)
        value = self._rung_results(trial).get(reached)
        return (self._failed(trial), -reached, math.inf if value is None else value)

    # ------------------------------------------------------------------ results
    def report(self, job_id: str, objective: float | None, record: dict | None = None) -> None:
        job = next(j for j in self.jobs if j["id"] == job_id)
        job["status"] = "done" if objective is not None else "failed"
        job["objective"], job["record"] = objective, dict(record or {})
        previous = [j for j in self.jobs if j["run"] == job["run"] and j is not job and j["status"] == "done"]
        done_flops = max((j["record"].get("train_flops") or 0 for j in previous), default=0)
        done_tokens = max((j["record"].get("train_tokens") or 0 for j in previous), default=0)
        job["flops"] = max(0.0, (job["record"].get("train_flops") or 0) - done_flops)
        job["tokens"] = max(0, (job["record"].get("train_tokens") or 0) - done_tokens)
        self._record_rung(job)

    def _record_rung(self, job) -> None:
        if job["run"] == job["trial"]:  # the trial's own lineage of checkpoints defines its rungs
            self.trials[job["trial"]]["rungs"][str(job["rung"])] = job["objective"]

    def finished(self) -> bool:
        return self.confirm is not None and not self._running() and not self.requeue

    def total_flops(self) -> float:
        return sum(j["flops"] for j in self.jobs)

    def leaderboard(self) -> list[dict]:
        rows = []
        for trial in sorted(self.trials.values(), key=self._rank_key):
            reached = self._reached(trial)
            rows.append({"trial": trial["id"], "label": trial["label"], "rung": reached,
                         "budget": self.budgets[reached] if reached >= 0 else 0,
                         "objective": self._rung_results(trial).get(reached) if reached >= 0 else None,
                         "flops": sum(j["flops"] for j in self.jobs if j["trial"] == trial["id"])})
        return rows

    def confirmation(self) -> list[dict]:
        """Per confirmed trial: objectives over seeds at the full budget, mean, spread; best first."""
        rows = []
        for trial_id, seeds in (self.confirm or {}).items():
            trial = self.trials[trial_id]
            values = [self._rung_results(trial).get(self.top)]
            values += [next((j["objective"] for j in self.jobs if j["id"] == f"{trial_id}@confirm-s{s}"), None)
                       for s in seeds[1:]]
            ok = [v for v in values if v is not None]
            rows.append({"trial": trial_id, "label": trial["label"], "objectives": values,
                         "mean": stats.mean(ok) if ok else None, "stdev": stats.stdev(ok), "n": len(ok)})
        return sorted(rows, key=lambda r: math.inf if r["mean"] is None else r["mean"])

    def winner(self) -> dict | None:
        rows = [r for r in self.confirmation() if r["mean"] is not None]
        return rows[0] if rows else None

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {"budgets": self.budgets, "eta": self.eta, "top_k": self.top_k, "seeds": self.seeds,
                "always_confirm": self.always_confirm, "trials": list(self.trials.values()),
                "jobs": self.jobs, "confirm": self.confirm}

    @classmethod
    def from_dict(cls, data: dict) -> "AshaSearch":
        search = cls(data["budgets"], data["eta"], data["trials"], data["top_k"], data["seeds"],
                     data.get("always_confirm", ()))
        search.jobs, search.confirm = data["jobs"], data.get("confirm")
        for job in search.jobs:  # rungs follow from the finished jobs, in the order they finished
            if job["status"] != "running":
                search._record_rung(job)
        # jobs that were running when the search stopped run again (resuming their checkpoints)
        search.requeue = [j for j in search.jobs if j["status"] == "running"]
        return search
