"""Where a population starts and how spread out it is.

    sources = init_sources({"from": ["runs/a", "runs/b"]}, "ga.yaml: init")   # checkpoint folders
    sources = init_sources({"campaign": "experiments/tiny", "top": 4}, where)  # a campaign's trials
    people = initial_population(sources, size=8, noise=0.01, seed=0, path_of=store.weights_path)
    d = weight_diversity([p.weights for p in people])

Three starts: one model (its copies, all but the first with noise), several checkpoints (each
once as it is, the rest of the population noisy copies in turn), or the fine-tuned variants of a
campaign (`foundry run` / sweep trial folders with a checkpoint, best val_bpb first; `top` of
them, default the population size). Every source must have the first one's tensor names, shapes
and tokenizer (the first also gives the config the worker builds models from); a source that
does not is a UserError naming it, except in a campaign, where trials of another architecture are
left out (mutations change shapes) and said so. Noise is Gaussian, `noise` times each tensor's rms.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from foundry.errors import UserError
from foundry.genetics.individual import Individual, read_tensors, write_tensors
from foundry.genetics.operators import evolvable

CHECKPOINT_FILES = ("model.safetensors", "config.yaml", "tokenizer.json")


def checkpoint_folder(path: str, where: str) -> str:
    """The folder holding model.safetensors, config.yaml and tokenizer.json of a run or checkpoint."""
    from foundry.weights.checkpoint import checkpoint_dir
    folder = os.path.abspath(checkpoint_dir(os.path.expandvars(path)))
    missing = [n for n in CHECKPOINT_FILES if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise UserError(f"{where}: {path} is not a Foundry checkpoint (missing {', '.join(missing)})")
    return folder


def signature(folder: str) -> tuple:
    """(tensor names and shapes, tokenizer text): what individuals that can be crossed share."""
    from safetensors import safe_open
    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        shapes = tuple(sorted((name, tuple(f.get_slice(name).get_shape())) for name in f.keys()))
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        return shapes, f.read()


def campaign_runs(campaign: str, where: str) -> list[str]:
    """Trial folders with a checkpoint under `campaign`, best (lowest) val_bpb first."""
    from foundry.io import read_summary
    if not os.path.isdir(campaign):
        raise UserError(f"{where}: {campaign}: no such campaign folder")
    found = []
    for folder, dirs, _ in os.walk(campaign):
        dirs.sort()
        if "checkpoint" in dirs and os.path.isfile(os.path.join(folder, "checkpoint", "model.safetensors")):
            summary = read_summary(folder) or {}
            bpb = summary.get("val_bpb")
            found.append((bpb if isinstance(bpb, (int, float)) and math.isfinite(bpb) else math.inf, folder))
            dirs.clear()
    if not found:
        raise UserError(f"{where}: {campaign}: no trial with a checkpoint (run the campaign with checkpoints kept)")
    return [folder for _, folder in sorted(found)]


def init_sources(init: dict, where: str, size: int | None = None, log=print) -> list[str]:
    """Checkpoint folders the population starts from; the first is the base (config, tokenizer)."""
    if "campaign" in init:
        runs = campaign_runs(init["campaign"], f"{where}.campaign")
        folders = [checkpoint_folder(r, f"{where}.campaign") for r in runs]
        first = signature(folders[0])
        kept = [f for f in folders if signature(f) == first]
        if len(kept) < len(folders):
            log(f"genetics: {len(folders) - len(kept)} trial(s) of {init['campaign']} have another architecture "
                "or tokenizer than its best; left out")
        return kept[:init.get("top") or size or len(kept)]
    folders = [checkpoint_folder(r, f"{where}.from[{i}]") for i, r in enumerate(init["from"])]
    first = signature(folders[0])
    for i, folder in enumerate(folders[1:], 1):
        shapes, tokenizer = signature(folder)
        if shapes != first[0]:
            odd = sorted(set(shapes) ^ set(first[0]))[0]
            raise UserError(f"{where}.from[{i}]: {init['from'][i]} has other tensors than {init['from'][0]} "
                            f"({odd[0]} {list(odd[1])}); individuals must share one architecture")
        if tokenizer != first[1]:
            raise UserError(f"{where}.from[{i}]: {init['from'][i]} has another tokenizer than {init['from'][0]}")
    return folders


def add_noise(tensors: dict, noise: float, generator: torch.Generator) -> dict:
    out = {}
    for name, x in tensors.items():
        if evolvable(name, x) and noise > 0 and x.numel():
            work = x.float()
            work = work + torch.randn(x.shape, generator=generator) * (noise * work.pow(2).mean().sqrt())
            out[name] = work.to(x.dtype)
        else:
            out[name] = x
    return out


def seed_of(*parts: int) -> int:
    """A 63-bit seed from (run seed, generation, index, ...): each child's own random stream."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def initial_population(sources: list[str], size: int, noise: float, seed: int, path_of) -> list[Individual]:
    """Generation 0: each source once unchanged, then noisy copies of the sources in turn."""
    people = []
    for i in range(size):
        source = sources[i % len(sources)]
        ident = f"g0000-{i:03d}"
        tensors = read_tensors(os.path.join(source, "model.safetensors"))
        extra = {"source": source}
        if i >= len(sources) and noise > 0:
            tensors = add_noise(tensors, noise, torch.Generator().manual_seed(seed_of(seed, 0, i)))
            extra["noise"] = noise
        write_tensors(tensors, path_of(ident))
        people.append(Individual(ident, 0, [], "init" if "noise" not in extra else "init+noise",
                                 weights=path_of(ident), extra=extra))
    return people


def weight_diversity(paths: list[str]) -> float:
    """Spread of the population in weight space: sqrt(mean over weights of the variance across
    individuals) / rms of the mean weights (0: all identical). Reads one individual at a time."""
    paths = [p for p in paths if p]
    if len(paths) < 2:
        return 0.0
    total = mean = m2 = None
    for count, path in enumerate(paths, 1):   # Welford, per tensor, over individuals
        tensors = {k: v.double() for k, v in read_tensors(path).items() if evolvable(k, v)}
        if mean is None:
            mean, m2 = {k: v.clone() for k, v in tensors.items()}, {k: torch.zeros_like(v) for k, v in tensors.items()}
            continue
        for k, v in tensors.items():
            delta = v - mean[k]
            mean[k] += delta / count
            m2[k] += delta * (v - mean[k])
    total = sum(v.numel() for v in mean.values())
    variance = sum(float(m.sum()) for m in m2.values()) / (len(paths) * total)
    scale = math.sqrt(sum(float(v.pow(2).sum()) for v in mean.values()) / total)
    return math.sqrt(variance) / scale if scale > 0 else 0.0


class Population:
    """A generation: its individuals and the base checkpoint (config, tokenizer) they share.

        people = Population.from_model("runs/base", 8, noise=0.01, seed=0, folder="runs/ga/individuals")
        people = Population.from_checkpoints(["runs/a", "runs/b"], 8, 0.01, 0, folder)
        people = Population.from_campaign("experiments/tiny", 8, 0.01, 0, folder, top=4)
        people.best(), people.ranked(), people.diversity()
    """

    def __init__(self, individuals: list, base: str):
        self.individuals, self.base = list(individuals), base

    @classmethod
    def from_sources(cls, init: dict, size: int, seed: int, folder: str, where: str = "init") -> "Population":
        sources = init_sources(init, where, size)
        path_of = lambda ident: os.path.join(os.path.abspath(folder), f"{ident}.safetensors")  # noqa: E731
        return cls(initial_population(sources, size, init.get("noise", 0.01), seed, path_of), sources[0])

    @classmethod
    def from_model(cls, run: str, size: int, noise: float, seed: int, folder: str) -> "Population":
        return cls.from_sources({"from": [run], "noise": noise}, size, seed, folder)

    @classmethod
    def from_checkpoints(cls, runs: list, size: int, noise: float, seed: int, folder: str) -> "Population":
        return cls.from_sources({"from": list(runs), "noise": noise}, size, seed, folder)

    @classmethod
    def from_campaign(cls, campaign: str, size: int, noise: float, seed: int, folder: str,
                      top: int | None = None) -> "Population":
        init = {"campaign": campaign, "noise": noise, **({"top": top} if top else {})}
        return cls.from_sources(init, size, seed, folder)

    def ranked(self) -> list:
        return sorted(self.individuals, key=lambda ind: -ind.rank_key)

    def best(self):
        scored = [ind for ind in self.individuals if ind.status == "scored"]
        return max(scored, key=lambda ind: ind.fitness) if scored else None

    def diversity(self) -> float:
        return weight_diversity([ind.weights for ind in self.individuals])
