"""Where a fused model's experts live, and how its frozen tensors arrive: one at a time, onto their device.

    devices = plan_placement(spec, "cuda:0", gpu_count=4)   # {"main": ..., expert: device}
    model = skeleton(cfg, torch.device("cpu"))              # frozen parts on meta, placement applied
    materialize(model, names, get)                          # get(name) -> tensor; each put on its device
    model = load_fused(cfg, "RUN/checkpoint/model.safetensors", "cpu")   # a saved fused checkpoint

Placement: an expert whose `device` is not `auto` goes there. With several CUDA GPUs, `auto`
experts are spread by size (largest first, each onto the GPU holding the fewest bytes so far,
the main GPU starting with the embedding and head); otherwise everything is on the main device.
Nothing of an expert is allocated until its tensors are read, and only the blocks the layers name
are built (`experts.py` reads them from the experts' checkpoints, this file's load_fused from a
fused one). `memory_report(model)` says what landed where.
"""
from __future__ import annotations

import math

import torch

from foundry.errors import UserError
from foundry.fusion.model import FusedModel
from foundry.fusion.spec import parse_fused
from foundry.model.gpt import Block

TIED_ALIAS = {"wte.weight": "lm_head.weight"}  # a tied model's one tensor may be stored under either name


def expert_sizes(spec) -> dict[str, int]:
    """Bytes (fp32) of the blocks each used expert contributes, counted on the meta device."""
    sizes = dict.fromkeys(spec.used_experts(), 0)
    with torch.device("meta"):
        for layer in spec.layers:
            for s in layer.sources:
                model_cfg = spec.experts[s.expert].model
                sizes[s.expert] += sum(4 * p.numel() for i in range(*s.layer_range)
                                       for p in Block(model_cfg, i).parameters())
    return sizes


def plan_placement(spec, main, gpu_count: int) -> dict[str, str]:
    """{"main": device, expert: device}: fixed devices as given, `auto` ones spread over the GPUs."""
    main = torch.device(main)
    if main.type == "cuda" and main.index is None:
        main = torch.device("cuda", 0)
    plan = {"main": str(main)}
    base = spec.experts[spec.base].model
    gpus = [f"cuda:{i}" for i in range(gpu_count)] if main.type == "cuda" and gpu_count > 1 else []
    load = dict.fromkeys(gpus, 0)
    if gpus:
        load[str(main)] = 4 * base.vocab_size * base.n_embd * (1 if base.tie_embeddings else 2)
    sizes = expert_sizes(spec)
    for name in sorted(sizes, key=lambda n: -sizes[n]):
        wanted = spec.experts[name].device
        if wanted != "auto":
            plan[name] = wanted
        elif gpus:
            plan[name] = min(gpus, key=lambda d: load[d])
        else:
            plan[name] = str(main)
        if plan[name] in load:
            load[plan[name]] += sizes[name]
    return plan


def skeleton(cfg, device) -> FusedModel:
    """The fused model `cfg` describes, placed; frozen tensors still on meta, adapters and routers initialised."""
    spec = parse_fused(cfg)
    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return FusedModel(cfg, spec, plan_placement(spec, device, gpu_count))


def materialize(model: FusedModel, names, get, where: str) -> None:
    """Give the tensors `names` their values get(name), each on its device (dtype as stored)."""
    state = {}
    for name in names:
        try:
            state[name] = get(name).to(model.device_of(name))
        except KeyError:
            raise UserError(f"{where}: has no tensor {name}") from None
    model.load_state_dict(state, strict=False, assign=True)
    model.tie()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise UserError(f"{where}: gives no value for {left[0]} ({len(left)} tensors missing)")


def tied_head(model: FusedModel) -> set:
    """The head's name when it shares the embedding (not stored separately)."""
    return {"lm_head.weight"} if model.spec.experts[model.spec.base].model.tie_embeddings else set()


def load_fused(cfg, weights: str, device="cpu") -> FusedModel:
    """A fused model with every tensor from a saved fused checkpoint's safetensors file."""
    import os

    from foundry.weights.tensors import TensorReader
    folder, file = os.path.split(weights)
    reader = TensorReader.from_folder(folder, prefix=file.removesuffix(".safetensors"))
    model, stored = skeleton(cfg, device), set(reader.names())
    materialize(model, [n for n in model.state_dict() if n not in tied_head(model)],
                lambda n: reader.get(n if n in stored else TIED_ALIAS.get(n, n)), weights)
    return model


def memory_report(model: FusedModel) -> dict:
    """{"experts": {name: {device, blocks, params, mb}}, "by_device_mb": {device: MB of weights},
    "trainable_params", "peak_mb": {device: peak MB}} (CPU peak: the process's resident set)."""
    from foundry.hardware import peak_memory_mb
    experts, by_device = {}, {}
    for layer in model.blocks:
        for path in layer.paths:
            entry = experts.setdefault(path.expert, {"device": str(model.devices[path.expert]), "blocks": [],
                                                     "params": 0, "mb": 0.0})
            entry["blocks"].append(list(range(path.first, path.last)))
            params = list(path.blocks.parameters())
            entry["params"] += sum(p.numel() for p in params)
            entry["mb"] += sum(p.numel() * p.element_size() for p in params) / 2**20
    for p in model.parameters():
        key = str(p.device)
        by_device[key] = by_device.get(key, 0.0) + p.numel() * p.element_size() / 2**20
    peaks = {d: peak_memory_mb(d) for d in sorted(by_device)}
    return {"experts": experts, "by_device_mb": {k: round(v, 3) for k, v in by_device.items()},
            "trainable_params": model.trainable_params(), "params": model.num_params(),
            "peak_mb": {k: round(v, 1) for k, v in peaks.items() if not math.isnan(v)}}
