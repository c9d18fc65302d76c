"""The registry of model families (FAMILIES, at the end) and the config conversion both ways.

    family = family_of(hf_config, "hf/qwen")            # from config.json's architectures / model_type
    model = foundry_model_keys(family, hf_config)      # {Foundry model key: value}
    family = exportable_family(cfg.model)              # the first family that can express it, or UserError
    hf_config = hf_config_of(family, cfg.model)        # config.json's model keys

A family is picked from config.json's `architectures` when it names one (a head other than the
causal LM, e.g. ...ForSequenceClassification, is refused), else from `model_type`; never from a
folder name. To add a family: write one table file beside llama.py and add it to FAMILIES.
"""
from __future__ import annotations

import dataclasses

from foundry.errors import UserError
from foundry.model.modules import MLPS, NORMS
from foundry.model.modules.mlp import GatedMLP, hidden_width
from foundry.zoo.family import Family
from foundry.zoo.gpt2 import GPT2
from foundry.zoo.llama import LLAMA
from foundry.zoo.mistral import MISTRAL
from foundry.zoo.qwen2 import QWEN2


def supported() -> str:
    return ", ".join(f"{f.architecture} ({f.model_type})" for f in FAMILIES.values())


def family_of(hf_config: dict, where: str) -> Family:
    architectures = hf_config.get("architectures") or []
    model_type = hf_config.get("model_type")
    for family in FAMILIES.values():
        if family.architecture in architectures or (not architectures and family.model_type == model_type):
            return family
    raise UserError(f"{where}: architectures {architectures} (model_type {model_type!r}) is not supported; "
                    f"supported: {supported()}")


def foundry_model_keys(family: Family, hf: dict, where: str = "config.json") -> dict:
    """The Foundry `model` section of a Hugging Face config; UserError names an unsupported key."""
    for key, accepted in family.hf_requires.items():
        value = hf.get(key, accepted[0])
        if value not in accepted:
            raise UserError(f"{where}: {key}={value!r} is not supported for {family.name} "
                            f"(supported: {', '.join(map(repr, accepted))})")
    values = {**family.hf_defaults, **{k: v for k, v in hf.items() if v is not None}}
    missing = [h for _, h in family.config if h not in values]
    if missing:
        raise UserError(f"{where}: missing {', '.join(missing)}")
    model = {key: accepted[0] for key, accepted in family.requires.items() if key != "layers"}
    model.update({f: values[h] for f, h in family.config})
    try:
        model.update(family.read(values))
    except UserError as e:
        raise UserError(f"{where}: {e}".replace("config.json: ", "")) from None
    return model


def resolved(m):
    """The model config with the values that defaults leave implicit made explicit (eps, MLP width)."""
    gated = issubclass(MLPS[m.activation], GatedMLP)
    return dataclasses.replace(m, norm_eps=m.norm_eps or NORMS[m.norm].default_eps,
                               mlp_hidden=hidden_width(m, gated))


def misfit(family: Family, m) -> str | None:
    """Why `family` cannot express model config `m`, or None."""
    if m.stages:
        return "model.stages (a pipeline of stages; a Hugging Face family is one decoder stack)"
    for key, accepted in family.requires.items():
        value = getattr(m, key)
        if value not in accepted:
            return f"model.{key}={value!r} (it has {', '.join(map(repr, accepted))})"
    return None


def exportable_family(m, preferred: str | None = None, where: str = "the run") -> Family:
    """`preferred` (checked) when given, else the first family of FAMILIES that can express `m`."""
    if preferred:
        if preferred not in FAMILIES:
            raise UserError(f"--family: unknown {preferred!r} (valid: {', '.join(FAMILIES)})")
        reason = misfit(FAMILIES[preferred], m)
        if reason:
            raise UserError(f"{where}: {preferred} cannot express {reason}")
        return FAMILIES[preferred]
    reasons = []
    for family in FAMILIES.values():
        reason = misfit(family, m)
        if reason is None:
            return family
        reasons.append(f"{family.name}: {reason}")
    raise UserError(f"{where}: no Hugging Face family can express this model ({'; '.join(reasons)})")


def hf_config_of(family: Family, m) -> dict:
    """config.json's model keys for model config `m` (tokenizer ids and dtype are the caller's)."""
    m = resolved(m)
    out = {"architectures": [family.architecture], "model_type": family.model_type}
    out.update({h: getattr(m, f) for f, h in family.config})
    out.update({key: accepted[0] for key, accepted in family.hf_requires.items()})
    out.update(family.write(m))
    return out


FAMILIES = {"llama": LLAMA, "mistral": MISTRAL, "qwen2": QWEN2, "gpt2": GPT2}
