"""Mutations of the architecture DSL: one layer's token mixer, the router, a stage's depth, the
latent sampler on or off, the SSM state and the attention window (model.stages, foundry/model/stages.py).

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched, result
validated). A setting is changed where the config sets it (model-wide, in a stage, in a stage's or
the model's `layers`), so a pipeline's own values move too. The registry PIPELINE at the end maps
type -> (function, variants); foundry.mutate merges it into MUTATIONS.
"""
import dataclasses

from foundry.config import PER_LAYER_KEYS, diff, layer_config
from foundry.config_layers import layer_selector, stage_spans
from foundry.mutate.edit import NotApplicable, factor_of, scaled_int, with_values

MIXERS = ("mha", "retention", "ssm", "routed")
WINDOWED = ("sliding_window", "sparse")   # attention kinds that read model.window


def _layers(m):
    return [layer_config(m, i) for i in range(m.n_layer)]


def builds_the_same(a, b) -> bool:
    """Whether configs a and b differ only in model keys that no layer reads (a model-wide value that
    every stage sets for itself): the same model, a wasted trial. Compares every layer's own settings
    and the stages' layout."""
    if any(not key.startswith("model.") for key in diff(a, b)):
        return False
    def built(m):
        layers = [dataclasses.replace(layer_config(m, i), layers={}, stages=[]) for i in range(m.n_layer)]
        return layers, [{k: v for k, v in s.items() if k not in PER_LAYER_KEYS and k != "layers"} for s in m.stages]
    return built(a.model) == built(b.model)


def _decoders(m) -> list[tuple[int, dict, int, int]]:
    """(position in model.stages, stage, first global layer, count) of each decoder stage."""
    return [(i, s, first, count) for i, (s, (first, count)) in enumerate(zip(m.stages, stage_spans(m.stages)))
            if s["kind"] == "decoder"]


def layer_mixer(cfg, variant):
    """One layer's token mixer: the first or last decoder layer becomes mha, retention, ssm or routed."""
    mixer, where = variant.rsplit("_", 1)
    m = cfg.model
    settings = {"attention": mixer, **({"n_kv_head": 0} if mixer == "mha" else {})}
    if m.stages:
        position, _, first, count = _decoders(m)[0 if where == "first" else -1]
        local = 0 if where == "first" else count - 1
        index = first + local
        stages = [dict(s) for s in m.stages]
        layers = dict(stages[position]["layers"])
        layers[str(local)] = {**layers.get(str(local), {}), **settings}
        stages[position]["layers"] = layers
        updates = {"model.stages": stages}
    else:
        index = 0 if where == "first" else m.n_layer - 1
        updates = {"model.layers": {**m.layers, str(index): {**m.layers.get(str(index), {}), **settings}}}
    if layer_config(m, index).attention == mixer:
        raise NotApplicable(f"layer {index} already mixes with {mixer}")
    child = with_values(cfg, updates)
    if layer_config(child.model, index).attention != mixer:
        raise NotApplicable(f"a later model.layers entry sets layer {index}'s mixer")
    return child


def _everywhere(m, key: str, change, users: list[int]) -> dict:
    """Updates that apply `change` to `key` wherever m sets it (in stages, in layers), and to the
    model-wide value when one of the layers `users` (those that read it) takes it from there."""
    def entries(layers):
        return {sel: {**v, key: change(v[key])} if key in v else v for sel, v in layers.items()}
    local = set()   # layers whose value a stage or a layers entry sets
    for stage, (first, count) in zip(m.stages, stage_spans(m.stages)):
        local |= set(range(first, first + count)) if key in stage else set()
        local |= {first + i for sel, v in stage.get("layers", {}).items() if key in v for i in layer_selector(sel, count)}
    local |= {i for sel, v in m.layers.items() if key in v for i in layer_selector(sel, m.n_layer)}
    stages = [{**s, **({key: change(s[key])} if key in s else {}),
               **({"layers": entries(s["layers"])} if "layers" in s else {})} for s in m.stages]
    model_wide = getattr(m, key)
    return {f"model.{key}": change(model_wide) if set(users) - local else model_wide, "model.stages": stages,
            "model.layers": entries(m.layers)}


def _users(m, reads) -> list[int]:
    return [i for i, layer in enumerate(_layers(m)) if reads(layer)]


def router(cfg, variant):
    """The routed mixer's router: top-1 or top-2 of its mixers, or its softmax temperature halved/doubled."""
    m = cfg.model
    users = _users(m, lambda layer: layer.attention == "routed")
    if not users:
        raise NotApplicable("no layer uses the routed mixer")
    if variant.startswith("top_k_"):
        k = int(variant.rsplit("_", 1)[1])
        return with_values(cfg, _everywhere(m, "router_top_k", lambda _: k, users))
    factor = factor_of(variant.rsplit("_", 1)[1])
    return with_values(cfg, _everywhere(m, "router_temperature", lambda t: t * factor, users))


def stage_depth(cfg, variant):
    """One layer more or fewer in the first or last decoder stage (model.n_layer follows)."""
    m = cfg.model
    if not m.stages:
        raise NotApplicable("no model.stages (mutation depth changes a plain model's layers)")
    if m.layers:
        raise NotApplicable("model.layers counts layers over all stages; a stage's depth would move them")
    step, where = variant.split("_")
    position, stage, _, count = _decoders(m)[0 if where == "first" else -1]
    new = count + (1 if step == "plus1" else -1)
    if new < 1:
        raise NotApplicable(f"model.stages.{stage['name']} has {count} layer; it cannot have {new}")
    stages = [dict(s) for s in m.stages]
    stages[position]["n_layer"] = new
    return with_values(cfg, {"model.stages": stages, "model.n_layer": m.n_layer - count + new})


def latent(cfg, variant):
    """The latent sampler: `on` puts a one-layer non-causal encoder and a latent stage before the first
    decoder (a plain model becomes one decoder stage); `off` removes every latent and encoder stage."""
    m = cfg.model
    has_latent = any(s["kind"] == "latent" for s in m.stages)
    if (variant == "on") == has_latent:
        raise NotApplicable(f"the latent sampler is already {variant}")
    if m.stages and m.layers:
        raise NotApplicable("model.layers counts layers over all stages; adding or removing an encoder would move them")
    if variant == "off":
        stages = [s for s in m.stages if s["kind"] == "decoder"]
    else:
        decoders = m.stages or [{"name": "decoder", "kind": "decoder", "n_layer": m.n_layer, "layers": m.layers}]
        first = next(i for i, s in enumerate(decoders) if s["kind"] == "decoder")
        names = {s["name"] for s in decoders}
        encoder = next(n for n in ("encoder", "encoder_1", "encoder_2") if n not in names)
        sampler = next(n for n in ("latent", "latent_1", "latent_2") if n not in names)
        stages = [*decoders[:first], {"name": encoder, "kind": "encoder", "n_layer": 1},
                  {"name": sampler, "kind": "latent"}, *decoders[first:]]
    total = sum(count for _, count in stage_spans(stages))
    return with_values(cfg, {"model.stages": stages, "model.layers": {}, "model.n_layer": total})


def d_state(cfg, variant):
    """State size of the selective SSM mixer (alone or among a router's mixers), halved or doubled."""
    m = cfg.model
    users = _users(m, lambda layer: layer.attention == "ssm" or (layer.attention == "routed" and "ssm" in layer.router_mixers))
    if not users:
        raise NotApplicable("no layer uses the ssm mixer")
    return with_values(cfg, _everywhere(m, "d_state", lambda d: scaled_int(d, factor_of(variant)), users))


def window(cfg, variant):
    """Look-back window (and KV cache bound) of windowed attention, halved or doubled, at most block_size."""
    m = cfg.model
    users = _users(m, lambda layer: layer.attention in WINDOWED or
                   (layer.attention == "routed" and bool(set(WINDOWED) & set(layer.router_mixers))))
    if not users:
        raise NotApplicable("no layer uses windowed attention")
    return with_values(cfg, _everywhere(m, "window", lambda w: min(m.block_size, scaled_int(w, factor_of(variant))), users))


PIPELINE = {
    "layer_mixer": (layer_mixer, tuple(f"{mixer}_{where}" for mixer in MIXERS for where in ("first", "last"))),
    "router": (router, ("top_k_1", "top_k_2", "temperature_x0.5", "temperature_x2")),
    "stage_depth": (stage_depth, ("plus1_first", "minus1_first", "plus1_last", "minus1_last")),
    "latent": (latent, ("on", "off")),
    "d_state": (d_state, ("x0.5", "x2")),
    "window": (window, ("x0.5", "x2")),
}
