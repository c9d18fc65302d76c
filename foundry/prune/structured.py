"""Structured pruning: whole attention heads, FFN neurons or blocks removed by importance, giving a
genuinely smaller config (fewer heads or a narrower MLP per layer through model.layers, or fewer
layers) and a new, smaller GPT that holds the kept weights exactly.

    small, small_model_cfg, report = prune_structured(model, "heads", 0.25, x)   # `model` untouched

Importance, measured on calibration sequences x (B, T):
    heads    the mean over tokens of the L2 norm of the head's contribution to the residual stream,
             ||o_h W_O[:, h]^T|| (o_h: the head's attention output)
    neurons  mean |a_j| * ||W_out[:, j]||: the neuron's contribution norm (a_j: its activation)
    layers   block influence, the mean of 1 - cos(x_in, x_out) over tokens (ShortGPT, Men et al., 2024)
`amount` is the share removed, rounded down, at least one unit kept. Scope `layer` removes that
share in every layer; `global` ranks the units of all layers together. In grouped-query attention
each key/value group keeps the same number of query heads; with n_kv_head = n_head a head goes
with its key and value. A kept head keeps its width (model.head_size).
"""
from __future__ import annotations

import dataclasses

import torch

from foundry.config import PER_LAYER_KEYS, layer_config
from foundry.errors import UserError
from foundry.model.gpt import GPT
from foundry.model.modules.gqa import GroupedQueryAttention
from foundry.model.modules.mlp import MLP, GatedMLP
from foundry.model.protocols import MLP as MLPKind
from foundry.model.protocols import Position
from foundry.prune.scores import observe
from foundry.prune.structured_layouts import gated_slices, gqa_slices, mlp_slices
from foundry.weights.masks import masked_modules

HEAD_LAYOUTS = {GroupedQueryAttention: gqa_slices}
NEURON_LAYOUTS = {GatedMLP: gated_slices, MLP: mlp_slices}


def _layout(table: dict, module, what: str, index: int):
    for cls, function in table.items():
        if isinstance(module, cls):
            return function
    raise UserError(f"structured {what} pruning: layer {index}'s {type(module).__name__} has no layout "
                    f"(supported: {', '.join(c.__name__ for c in table)} and their subclasses)")


def _mlps(block) -> dict:
    """{local name under the block: MLP} of a block's feed-forward (one when dense, each expert of a MoE)."""
    return {f"ffn.{name}": m for name, m in block.ffn.named_modules() if isinstance(m, MLPKind)}


@torch.no_grad()
def importance(model, kind: str, x) -> list:
    """Per layer: heads -> (n_head,), neurons -> {mlp name: (hidden,)}, layers -> scalar tensor."""
    sums, hooks = {}, []
    for i, block in enumerate(model.blocks):
        if kind == "heads":
            c_proj, heads = block.attn.c_proj, block.attn.n_head

            def head_hook(module, args, i=i, heads=heads):
                o = args[0].float().flatten(0, -2).view(-1, heads, module.in_features // heads)  # (N, H, D)
                w = module.weight.float().view(module.out_features, heads, -1)  # (C, H, D)
                sums[i] = sums.get(i, 0) + torch.einsum("nhd,chd->nhc", o, w).norm(dim=-1).sum(dim=0)
            hooks.append(c_proj.register_forward_pre_hook(head_hook))
        elif kind == "neurons":
            for name, mlp in _mlps(block).items():
                def neuron_hook(module, args, key=(i, name)):
                    a = args[0].float().flatten(0, -2)  # (N, hidden); the experts see only their tokens
                    total, count = sums.get(key, (0, 0))
                    sums[key] = (total + a.abs().sum(dim=0), count + a.shape[0])
                hooks.append(mlp.c_proj.register_forward_pre_hook(neuron_hook))
        else:
            def block_hook(module, args, output, i=i):
                cos = torch.nn.functional.cosine_similarity(args[0].float(), output.float(), dim=-1)  # (B, T)
                sums[i] = sums.get(i, 0) + (1 - cos).sum()
            hooks.append(block.register_forward_hook(block_hook))
    observe(model, x, hooks)
    if kind == "neurons":
        out = [{} for _ in model.blocks]
        for i, block in enumerate(model.blocks):
            for name, mlp in _mlps(block).items():
                total, count = sums.get((i, name), (torch.zeros(mlp.c_proj.in_features), 1))
                out[i][name] = total.cpu() / max(1, count) * mlp.c_proj.weight.float().norm(dim=0).cpu()
        return out
    return [sums[i].cpu() for i in range(len(model.blocks))]


def _keep_count(n: int, amount: float) -> int:
    return max(1, n - int(amount * n))


def _top(scores, count: int) -> list[int]:
    """Indices of the `count` highest scores, in increasing index order."""
    return sorted(torch.argsort(scores, descending=True, stable=True)[:count].tolist())


def _threshold(all_scores: list, amount: float):
    flat = torch.cat([s.flatten() for s in all_scores])
    n_removed = int(amount * flat.numel())
    return torch.sort(flat).values[n_removed - 1].item() if n_removed else float("-inf")


def _head_plan(model, scores, amount, scope):
    """Per layer: the query heads kept (each kv group keeps the same number)."""
    cut = _threshold(scores, amount) if scope == "global" else None
    plan = []
    for block, s in zip(model.blocks, scores):
        heads, groups = block.attn.n_head, block.attn.n_kv
        per_group = heads // groups
        if cut is None:
            keep = _keep_count(per_group if groups < heads else heads, amount)
        else:
            above = int((s > cut).sum())
            keep = max(1, round(above / groups)) if groups < heads else max(1, above)
        if groups == heads:
            plan.append(_top(s, keep))
        else:  # the best `keep` query heads within each group
            plan.append(sorted(g * per_group + h for g in range(groups) for h in _top(s.view(groups, per_group)[g], keep)))
    return plan


def _neuron_plan(model, scores, amount, scope):
    """Per layer: {mlp name: kept hidden units}, the same count for every MLP of a layer."""
    cut = _threshold([s for layer in scores for s in layer.values()], amount) if scope == "global" else None
    plan = []
    for layer in scores:
        widths = [len(s) for s in layer.values()]
        if cut is None:
            keep = _keep_count(widths[0], amount)
        else:
            keep = max(1, round(sum(int((s > cut).sum()) for s in layer.values()) / len(layer)))
        plan.append({name: _top(s, keep) for name, s in layer.items()})
    return plan


def compact_model_config(model_cfg, layer_cfgs: list):
    """The ModelConfig whose layers are `layer_cfgs` (full per-layer settings, in order): a key the
    same in every layer is set model-wide, the others per layer in model.layers ("3": {...})."""
    wide, layers = {}, {}
    for key in PER_LAYER_KEYS:
        values = [getattr(c, key) for c in layer_cfgs]
        if all(v == values[0] for v in values):
            wide[key] = values[0]
            continue
        for i, value in enumerate(values):
            if value != getattr(model_cfg, key):
                layers.setdefault(str(i), {})[key] = value
    return dataclasses.replace(model_cfg, n_layer=len(layer_cfgs), layers=layers, **wide)


def prune_structured(model, kind: str, amount: float, x, scope: str = "layer"):
    """(smaller GPT in eval mode, its ModelConfig, report); `model` is left as it was."""
    cfg = model.cfg
    if kind not in ("heads", "neurons", "layers"):
        raise UserError(f"--structured: unknown {kind!r} (valid: heads, neurons, layers)")
    if not 0.0 < amount < 1.0 or scope not in ("layer", "global"):
        raise UserError(f"structured pruning: the share removed must be in (0, 1) and the scope layer or global, "
                        f"got {amount}, {scope!r}")
    if masked_modules(model):
        raise UserError("structured pruning of a model that already has pruning masks is not supported")
    if cfg.stages:
        raise UserError("structured pruning of a model with model.stages is not supported (its stages fix the layers)")
    head_dims = {layer_config(cfg, i).head_dim for i in range(cfg.n_layer)}
    if kind == "heads":
        if model.position.__class__.bias is not Position.bias:
            raise UserError(f"structured heads pruning: model.position={cfg.position} biases each head by its index")
        if len(head_dims) > 1:
            raise UserError(f"structured heads pruning needs one head width in all layers, got {sorted(head_dims)}")
        for i, block in enumerate(model.blocks):
            _layout(HEAD_LAYOUTS, block.attn, "heads", i)
    if kind == "neurons":
        for i, block in enumerate(model.blocks):
            for mlp in _mlps(block).values():
                _layout(NEURON_LAYOUTS, mlp, "neurons", i)
    scores = importance(model, kind, x)
    old_state = model.state_dict()
    layer_cfgs, sources, block_states = [], [], []
    if kind == "layers":
        kept = _top(torch.stack(scores), _keep_count(cfg.n_layer, amount))
        for j in kept:
            layer_cfgs.append(dataclasses.replace(layer_config(cfg, j), layers={}))
            block_states.append(model.blocks[j].state_dict())
        sources = kept
    else:
        plan = (_head_plan if kind == "heads" else _neuron_plan)(model, scores, amount, scope)
        for i, (block, keep) in enumerate(zip(model.blocks, plan)):
            layer = dataclasses.replace(layer_config(cfg, i), layers={})
            state = dict(block.state_dict())
            if kind == "heads":
                attn = block.attn
                if attn.n_kv < attn.n_head:  # grouped: the groups stay, each with fewer query heads
                    kv = attn.n_kv
                else:  # each head went with its key and value
                    kv = len(keep) if layer.n_kv_head else 0
                layer = dataclasses.replace(layer, n_head=len(keep), n_kv_head=kv)
                slices = _layout(HEAD_LAYOUTS, attn, "heads", i)(attn, keep)
                state.update({f"attn.{k}": v for k, v in slices.items()})
            else:
                for name, units in keep.items():
                    mlp = block.get_submodule(name)
                    slices = _layout(NEURON_LAYOUTS, mlp, "neurons", i)(mlp, units)
                    state.update({f"{name}.{k}": v for k, v in slices.items()})
                layer = dataclasses.replace(layer, mlp_hidden=len(next(iter(keep.values()))))
            layer_cfgs.append(layer)
            block_states.append(state)
            sources.append(i)
    small_cfg = compact_model_config(cfg, layer_cfgs)
    if kind == "heads":
        small_cfg = dataclasses.replace(small_cfg, head_size=head_dims.pop())
    small = GPT(small_cfg)
    new_state = {k: v for k, v in old_state.items() if not k.startswith("blocks.")}
    for i, state in enumerate(block_states):
        new_state.update({f"blocks.{i}.{k}": v for k, v in state.items()})
    small.load_state_dict(new_state, strict=True)
    small.to(next(model.parameters()).device).eval()
    report = {"structured": kind, "amount": amount, "scope": scope, "source_layers": sources,
              "params_before": model.num_params(), "params_after": small.num_params(),
              "flops_per_token_before": model.flops_per_token(), "flops_per_token_after": small.flops_per_token(),
              "layers": [{"n_head": c.n_head, "mlp_hidden": _mlp_width(small.blocks[i])} for i, c in enumerate(layer_cfgs)]}
    return small, small_cfg, report


def _mlp_width(block) -> int:
    return next(iter(_mlps(block).values())).c_proj.in_features
