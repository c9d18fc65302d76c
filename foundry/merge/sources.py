"""The models a recipe names, opened lazily: Foundry run folders / checkpoints and Hugging Face
folders (single or sharded safetensors, through foundry.zoo), each as one interface.

    model = open_model("runs/base")             # or an HF folder; nothing is read but headers
    model.kind, model.names, model.n_layer      # "foundry" | "hf"; tensor names in model order
    model.spec(name) -> (dtype, shape); model.get(name) -> tensor (read now, one at a time)
    model.pre, model.layers[i], model.post      # names before, in, and after the layer stack
    model.template(name) -> "blocks.{}.attn.q_proj.weight" (None outside the layers)
    model.model_cfg                             # its Foundry ModelConfig (HF: mapped by the zoo)
    model.layer_settings(i)                     # layer i's per-layer settings (model.layers applied)
    model.tokenizer                             # a Foundry tokenizer object (HF: foundry.data.HFTokenizer,
                                                # None for a folder without tokenizer.json, as mergekit allows)
    model.vocab_names                           # tensors indexed by token id (embedding, head)

A Foundry model is read from its EMA weights when it has them (as `foundry.load` does) and with
any LoRA adapters merged in. Tied embeddings are stored once (safetensors keeps the head's name
or the embedding's): the model exposes `wte.weight` only, and `lm_head.weight` reads it too, so
models with and without tying can be merged. A Hugging Face folder keeps its own tensor names,
so recipes written for mergekit (filters such as `self_attn`, `mlp`) mean the same here.
"""
from __future__ import annotations

import hashlib
import os

from foundry.errors import UserError

FOUNDRY_LAYER_PREFIX = "blocks."


def resolve_path(ref: str) -> str:
    """A model reference as a local folder ($VARS and ~ expanded, relative to the current folder)."""
    path = os.path.abspath(os.path.expanduser(os.path.expandvars(ref)))
    if not os.path.isdir(path):
        raise UserError(f"{ref}: no such model folder (Foundry reads local folders; nothing is downloaded)")
    return path


def split_layers(names, layer_prefix: str):
    """(pre, layers, post) of names in model order: those before the first layer tensor, the layer
    tensors by index, those after."""
    pre, layers, post = [], {}, []
    for name in names:
        index = layer_index(name, layer_prefix)
        if index is None:
            (post if layers else pre).append(name)
        else:
            layers.setdefault(index, []).append(name)
    return pre, [layers[i] for i in sorted(layers)], post


def layer_index(name: str, layer_prefix: str) -> int | None:
    if not name.startswith(layer_prefix):
        return None
    head = name[len(layer_prefix):].split(".", 1)[0]
    return int(head) if head.isdigit() else None


class Model:
    """Shared by both kinds: names, layer structure, specs, lazy reads, a content fingerprint."""

    kind = ""

    def __init__(self, ref: str, path: str, names: list[str], specs: dict, get, layer_prefix: str, files: list[str]):
        self.ref, self.path, self.names, self._specs, self._get = ref, path, names, specs, get
        self.layer_prefix, self.files = layer_prefix, files
        self.pre, self.layers, self.post = split_layers(names, layer_prefix)
        self.n_layer = len(self.layers)

    def spec(self, name: str):
        return self._specs[name]

    def has(self, name: str) -> bool:
        return name in self._specs

    def get(self, name: str):
        return self._get(name)

    def layer_settings(self, index: int) -> dict:
        from foundry.config import PER_LAYER_KEYS, layer_config
        own = layer_config(self.model_cfg, index)
        return {k: getattr(own, k) for k in PER_LAYER_KEYS}

    def template(self, name: str) -> str | None:
        index = layer_index(name, self.layer_prefix)
        if index is None:
            return None
        return self.layer_prefix + "{}" + name[len(self.layer_prefix) + len(str(index)):]

    def fingerprint(self) -> str:
        """sha256 over the weight files' bytes (what the lineage record names the input by)."""
        digest = hashlib.sha256()
        for path in self.files:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 24):
                    digest.update(chunk)
        return digest.hexdigest()


class FoundryModel(Model):
    kind = "foundry"

    def __init__(self, ref: str, path: str):
        from foundry.weights.lora import merged_weights
        from foundry.zoo.export import load_run
        from foundry.zoo.hf import model_specs
        self.folder, self.cfg, self.tokenizer, reader = load_run(path)
        specs, get = merged_weights(reader, self.cfg.train)
        m = self.cfg.model
        expected = list(model_specs(m))                    # model order; a tied head left out
        if m.tie_embeddings and ("wte.weight" in specs or "lm_head.weight" in specs):
            stored = "wte.weight" if "wte.weight" in specs else "lm_head.weight"
            specs["wte.weight"] = specs["lm_head.weight"] = specs[stored]   # lm_head readable, not listed
            read = get
            get = lambda name: read(stored if name in ("wte.weight", "lm_head.weight") else name)  # noqa: E731
        missing = [n for n in expected if n not in specs]
        if missing:
            raise UserError(f"{ref}: its weights do not fit its config.yaml ({len(missing)} missing, e.g. {missing[0]})")
        super().__init__(ref, path, expected, specs, get, FOUNDRY_LAYER_PREFIX, list(reader.files))
        self.model_cfg = m
        self.vocab_names = ["wte.weight"] + ([] if m.tie_embeddings else ["lm_head.weight"])


class HFModel(Model):
    kind = "hf"

    def __init__(self, ref: str, path: str):
        from foundry.zoo import HFCheckpoint
        from foundry import catalog
        hf = HFCheckpoint(path)
        self.hf, self.family, self.config = hf, hf.family, hf.config
        self.model_cfg = catalog.from_dict({"model": hf.model_keys, "budget": {"steps": 1}}).model
        tied = bool(hf.model_keys.get("tie_embeddings"))
        n_layer = int(hf.model_keys["n_layer"])
        expected, vocab, layer_prefix = [], [], None
        for rule, hf_names, foundry in hf.family.rules(n_layer, tied):
            expected += hf_names
            if foundry[0] in ("wte.weight", "lm_head.weight"):
                vocab += hf_names
            if "{}" in rule.hf[0]:
                layer_prefix = rule.hf[0].split("{}")[0]
        stored = set(hf.reader.names())
        where = {n: n if n in stored else n.removeprefix(hf.family.prefix) for n in expected}
        missing = [n for n in expected if where[n] not in stored]
        if missing:
            raise UserError(f"{ref}: {len(missing)} {hf.family.name} tensors are missing, e.g. {missing[0]}")
        ignored = {p.format(i) for p in hf.family.ignored for i in range(n_layer)} | ({"lm_head.weight"} if tied else set())
        unknown = sorted(stored - set(where.values()) - ignored)
        if unknown:
            raise UserError(f"{ref}: tensor {unknown[0]!r} has no place in the {hf.family.name} table")
        pre, layers, post = split_layers(expected, layer_prefix)   # the table lists rule by rule
        names = pre + [n for layer in layers for n in layer] + post
        specs = {n: hf.reader.spec(where[n]) for n in expected}
        head = [n for _, hf_names, foundry in hf.family.rules(n_layer, False) if foundry == ["lm_head.weight"]
                for n in hf_names]
        if tied and head:       # a tied head reads the embedding, for merges with untied models
            embed = vocab[0]
            specs[head[0]], where[head[0]] = specs[embed], where[embed]
        super().__init__(ref, path, names, specs, lambda n: hf.reader.get(where[n]), layer_prefix,
                         list(hf.reader.files))
        self.vocab_names = vocab
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None and os.path.isfile(os.path.join(self.path, "tokenizer.json")):
            self._tokenizer = self.hf.tokenizer()
        return self._tokenizer


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja")


def open_model(ref: str) -> Model:
    """A Foundry run folder / checkpoint (config.yaml) or a Hugging Face folder (config.json)."""
    path = resolve_path(ref)
    from foundry.weights.checkpoint import checkpoint_dir
    if os.path.isfile(os.path.join(checkpoint_dir(path), "config.yaml")):
        return FoundryModel(ref, path)
    if os.path.isfile(os.path.join(path, "config.json")):
        return HFModel(ref, path)
    raise UserError(f"{ref}: neither a Foundry checkpoint (config.yaml) nor a Hugging Face folder (config.json)")
