"""The real supervisor loop (agent/loop.py) on a stub trainer with a known landscape, hundreds of
generations in seconds. Used by tests/agent/test_simulation.py and bench/discovery_simulation.py.

    land = Landscape(noise=0.01, effects={"activation:swiglu": -0.03})
    campaign = Campaign(tmp_dir, land, proposer="learned", seed=1)
    campaign.run(generations=50)               # Supervisor.run, generation after generation
    campaign.decisions(); campaign.true_metric(); campaign.trials

What is stubbed is the trial process only: StubPool has the worker pool's interface
(submit / poll / busy / running / stop / close) and answers each trial at once with the
landscape's value for its config and seed, as summary.json would hold it. Everything else is
real: the proposers, the ledger (SQLite), the paired t-test, sequential confirmation, equal
compute, git promotions of baselines/tiny.yaml in a temporary repository.

A landscape: metric = base + for each mutation type in the config's lineage the effect of its
latest label (`effects`, else `default_effect`: a later activation replaces an earlier one) +
lr_curvature * log2(lr / lr_opt)^2 (lr is a numeric knob: its labels carry no effect of their
own, the value does) + Gaussian noise of sd `noise`, drawn from the config and the seed (the
same config and seed always give the same value). REALISTIC is the landscape of the learned
versus random comparison: a few changes help (lr most, by being 4x too low), several hurt, most
do nothing, as bench/mutations_improve.py found on shakespeare_char.
"""
from __future__ import annotations

import copy
import hashlib
import io
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass, field

import yaml

from agent.ledger import Ledger
from agent.loop import Supervisor
from agent.settings import Settings
from agent.view import View
from foundry.config import SAFE_LOADER, apply_overrides
from foundry.runner.pool import Event, TrialResult, Worker
from tests.agent.agent_fixtures import make_repo, tiny_baseline

NUMERIC_TYPES = ("lr",)


@dataclass
class Landscape:
    base: float = 2.0
    noise: float = 0.01
    effects: dict = field(default_factory=dict)
    default_effect: float = 0.0
    lr_opt: float = 0.0            # 0: lr has no effect
    lr_curvature: float = 0.0
    salt: int = 0                  # a different noise draw per repetition
    scaled_effects: dict = field(default_factory=dict)   # label effects when model.n_layer >= 2 (transfer)

    def labels(self, mutations) -> set:
        """The latest label of each non-numeric mutation type in the lineage."""
        latest = {}
        for part in (p for m in mutations for p in m.split("+")):
            if part.split(":")[0] not in NUMERIC_TYPES:
                latest[part.split(":")[0]] = part
        return set(latest.values())

    def true_metric(self, cfg: dict) -> float:
        table = {**self.effects, **self.scaled_effects} if cfg["model"].get("n_layer", 2) >= 2 else self.effects
        value = self.base + sum(table.get(lab, self.default_effect) for lab in self.labels(cfg.get("mutations", [])))
        if self.lr_opt:
            value += self.lr_curvature * math.log2(float(cfg["train"]["lr"]) / self.lr_opt) ** 2
        return value

    def metric(self, cfg: dict, seed: int) -> float:
        key = repr((sorted(self.labels(cfg.get("mutations", []))), cfg["train"]["lr"], cfg["model"].get("n_layer"),
                    seed, self.salt))
        rng = random.Random(hashlib.sha256(key.encode()).hexdigest())
        return self.true_metric(cfg) + rng.gauss(0.0, self.noise)


REALISTIC = dict(noise=0.01, lr_opt=4e-3, lr_curvature=0.01, effects={
    "activation:swiglu": -0.02, "activation:relu2": -0.025, "activation:glu": -0.01, "depth:plus1": -0.015,
    "width:x1.5": -0.015, "mlp_ratio:6": -0.005, "attention:gqa_1kv": 0.01, "attention:mla": 0.01,
    "attention:sparse": 0.02, "attention:sliding_window": 0.01, "ffn:moe": 0.02, "ffn:moe_8x1": 0.03,
    "position:none": 0.05, "position:alibi": 0.005, "dropout:0.1": 0.02, "heads:x0.5": 0.01, "depth:half": 0.03,
    "depth:minus1": 0.015, "width:x0.75": 0.015, "context:x0.5": 0.02, "loss:focal": 0.02,
    "loss:label_smoothing": 0.03, "tokenizer:bpe": 0.01, "batch_size:x2": 0.01, "warmup:off": 0.005})


class StubPool:
    """The WorkerPool interface, answering every trial at once from the landscape."""

    def __init__(self, landscape: Landscape, workers: int = 2):
        self.landscape = landscape
        self.workers = [Worker(f"stub{i}", "cpu") for i in range(workers)]
        self.queue, self.finished, self.configs = [], 0, {}

    def warm(self):
        pass

    def submit(self, spec):
        self.queue.append(spec)

    def busy(self) -> bool:
        return bool(self.queue)

    def running(self):
        return []

    def poll(self) -> list:
        events = []
        for i, spec in enumerate(self.queue):
            worker = self.workers[i % len(self.workers)]
            if spec.config_path not in self.configs:   # a variant's file never changes once written
                with open(spec.config_path) as f:
                    self.configs[spec.config_path] = yaml.load(f, Loader=SAFE_LOADER)
            cfg = apply_overrides(copy.deepcopy(self.configs[spec.config_path]), spec.overrides)
            value = self.landscape.metric(cfg, int(cfg["train"]["seed"]))
            tokens = 20 * 8 * int(cfg["model"]["block_size"]) * (cfg["budget"].get("steps") or 20) // 20
            summary = {"status": "done", "val_bpb": value, "val_loss": value * math.log(2), "train_tokens": tokens,
                       "train_flops": 6e5 * tokens, "wall_s": 1.0, "steps": cfg["budget"].get("steps")}
            now = time.time()
            events.append(Event("started", spec, worker, 0))
            events.append(Event("finished", spec, worker, 0, TrialResult(
                spec.trial_id, "done", 0, summary, "", "", worker.name, worker.device, now - 1.0, now)))
            self.finished += 1
        self.queue = []
        return events

    def stop(self):
        self.queue = []
        return []

    def recover(self, running) -> set:
        """Nothing survives a crash here: every trial answers at once, none is left running."""
        return set()

    def close(self):
        pass


class Campaign:
    """One supervisor campaign on a fresh temporary repository, driven generation by generation."""

    def __init__(self, folder: str, landscape: Landscape, proposer: str = "learned", seed: int = 1337,
                 population: int = 3, confirm_seeds: int = 3, max_confirm_seeds: int = 6, alpha: float = 0.05,
                 min_delta: float = 0.001, lr: float = 1e-3, transfer: dict | None = None):
        data = tiny_baseline()
        data["train"].update(lr=lr, min_lr=lr / 10)
        self.landscape = landscape
        self.repo = make_repo(os.path.join(folder, "repo"), data)
        settings = Settings()
        settings.search.population, settings.search.seed, settings.search.proposer = population, seed, proposer
        p = settings.promotion
        p.confirm_seeds, p.max_confirm_seeds, p.alpha, p.min_delta = confirm_seeds, max_confirm_seeds, alpha, min_delta
        p.transfer = dict(transfer or {})
        root = self.repo.working_tree_dir
        self.campaign_dir = os.path.join(root, "experiments", "tiny")
        self.pool = StubPool(landscape)
        self.sup = Supervisor(self.repo, os.path.join(root, "baselines", "tiny.yaml"), self.campaign_dir, settings,
                              View(os.path.join(self.campaign_dir, "supervisor.log"), stream=io.StringIO()),
                              poll_s=0.0, pool=self.pool)
        self.sup.queue_wait_s = 0.0

    def run(self, generations: int) -> None:
        """Run up to `generations` more generations (the campaign's count grows by that many)."""
        last = self.sup.ledger.last_generation()
        self.sup.run(generations=(last["gen"] if last else 0) + generations)

    def baseline_config(self) -> dict:
        with open(os.path.join(self.repo.working_tree_dir, "baselines", "tiny.yaml")) as f:
            return yaml.safe_load(f)

    def true_metric(self) -> float:
        return self.landscape.true_metric(self.baseline_config())

    @property
    def trials(self) -> int:
        return self.pool.finished

    def ledger(self) -> Ledger:
        return self.sup.ledger

    def tested(self) -> list[dict]:
        """One row per confirmation test: its decision and the candidate's true effect (negative = better)."""
        led, out = self.sup.ledger, []
        for d in led.decisions():
            if d["kind"] not in ("promote", "near_miss", "reject") or not d["variant"]:
                continue
            rows = led.trials(gen=d["gen"], role="confirm")
            cand = [t for t in rows if t["variant"] == d["variant"]]
            base = [t for t in rows if t["variant"] == "baseline"]
            if not cand or not base:
                continue   # rejected at screening: no test
            cfgs = [yaml.load(open(os.path.join(self.repo.working_tree_dir, t[0]["config_path"])), Loader=SAFE_LOADER)
                    for t in (base, cand)]
            effect = self.landscape.true_metric(cfgs[1]) - self.landscape.true_metric(cfgs[0])
            out.append({"gen": d["gen"], "kind": d["kind"], "effect": effect, "seeds": len(cand)})
        return out

    def close(self) -> None:
        self.sup.ledger.close()


def trials_to_target(folder: str, landscape: Landscape, proposer: str, target: float, seed: int,
                     max_generations: int = 80, **campaign) -> int | None:
    """Trials (screen + confirm) until the committed baseline's true metric is at or below `target`."""
    c = Campaign(folder, landscape, proposer=proposer, seed=seed, **campaign)
    try:
        for _ in range(max_generations):
            if c.true_metric() <= target:
                return c.trials
            c.run(1)
        return c.trials if c.true_metric() <= target else None
    finally:
        c.close()


def confirmation_tests(effect: float, salt: int, generations: int, folder: str | None = None, **campaign) -> list:
    """The confirmation tests of one campaign in which every new change has the true `effect`
    ([{gen, kind, effect, seeds, old_rule}]; old_rule: what the rule of before, normal z = 2 on
    the screening seed plus 2 confirmation seeds, unpaired, would have decided on the same trials)."""
    from foundry.search import stats

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        c = Campaign(tmp, Landscape(noise=0.01, default_effect=effect, salt=salt), proposer="random", seed=salt,
                     **campaign)
        c.run(generations)
        out, led = c.tested(), c.ledger()
        for row in out:
            trials = [t for t in led.trials(gen=row["gen"]) if t["role"] in ("screen", "confirm")]
            cand = next(t["variant"] for t in trials if t["role"] == "confirm" and t["variant"] != "baseline")
            seeds = sorted({t["seed"] for t in trials if t["variant"] == cand})[:3]
            b = [t["metric"] for t in trials if t["variant"] == "baseline" and t["seed"] in seeds]
            v = [t["metric"] for t in trials if t["variant"] == cand and t["seed"] in seeds]
            se = (stats.stderr(b) ** 2 + stats.stderr(v) ** 2) ** 0.5
            row["old_rule"] = stats.mean(b) - stats.mean(v) > max(0.001, 2 * se)
        c.close()
    return out
