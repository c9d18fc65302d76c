"""The `hf` tokenizer kind: a Hugging Face tokenizer.json used as it is, never trained.

    tok = load_tokenizer_file("runs/qwen")     # data.tokenizer_path: tokenizer.json, an HF folder, a run
    tok = fixed_tokenizer(cfg.data)            # that, when data.tokenizer is hf; None for trained kinds
    tok.encode("hello"), tok.special           # ids without special tokens; {"eos_token": "</s>", ...}

Imported models carry one (foundry zoo import), and every other kind converts to one with
to_hf() (foundry zoo export). Registered in TOKENIZERS in tokenizer.py.
"""
from __future__ import annotations

import json
import os

import numpy as np

from foundry.errors import UserError

# what of tokenizer_config.json an HFTokenizer keeps (and foundry zoo export writes back)
HF_SPECIAL_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template")


class HFTokenizer:
    """A Hugging Face tokenizer.json (`spec`) with the special tokens of its tokenizer_config.json
    (`special`: bos_token, eos_token, ... as strings). Encodes without adding special tokens, as the
    data pipeline joins documents itself; never trained."""

    name = "hf"

    def __init__(self, spec: dict, special: dict | None = None):
        from tokenizers import Tokenizer

        self.spec, self.special = spec, {k: v for k, v in (special or {}).items() if v is not None}
        try:
            self._tok = Tokenizer.from_str(json.dumps(spec))
        except Exception as e:  # the library raises its own Exception type for a malformed file
            raise UserError(f"hf tokenizer: not a valid tokenizer.json ({str(e).splitlines()[0]})") from None
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)

    @classmethod
    def train(cls, text: str, bpe_vocab_size: int = 0, special_tokens=()) -> "HFTokenizer":
        raise UserError("data.tokenizer: hf is loaded from data.tokenizer_path, never trained")

    @classmethod
    def from_dict(cls, data: dict) -> "HFTokenizer":
        if not isinstance(data.get("tokenizer"), dict):
            raise UserError("hf tokenizer json: missing the 'tokenizer' object")
        return cls(data["tokenizer"], data.get("special"))

    @classmethod
    def from_folder(cls, folder: str) -> "HFTokenizer":
        """tokenizer.json of a Hugging Face folder, with tokenizer_config.json's special tokens."""
        spec = _read_json(os.path.join(folder, "tokenizer.json"))
        config_file = os.path.join(folder, "tokenizer_config.json")
        config = _read_json(config_file) if os.path.exists(config_file) else {}
        special = {k: (v.get("content") if isinstance(v, dict) else v) for k, v in config.items() if k in HF_SPECIAL_KEYS}
        return cls(spec, special)

    def token_id(self, key: str) -> int | None:
        """The id of a special token ("bos_token", ...), or None."""
        token = self.special.get(key)
        return self._tok.token_to_id(token) if isinstance(token, str) else None

    def id_to_token(self, token_id: int) -> str | None:
        return self._tok.id_to_token(token_id)

    def encode_array(self, text: str) -> np.ndarray:
        # one call: chunking is exact only for some pre-tokenizers, and this kind may have any
        return np.asarray(self.encode(text), dtype=np.int64)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def to_json(self) -> str:
        return json.dumps({"kind": self.name, "tokenizer": self.spec, "special": self.special})

    def to_hf(self) -> "HFTokenizer":
        return self

    def __eq__(self, other) -> bool:
        return isinstance(other, HFTokenizer) and other.to_json() == self.to_json()


def hf_from_vocab(vocab: dict, pre_tokenizer, decoder) -> HFTokenizer:
    """A BPE with no merges over `vocab` (token -> id): every symbol stays its own token."""
    from tokenizers import Tokenizer, models
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    return HFTokenizer(json.loads(tok.to_str()))


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def load_tokenizer_file(path: str) -> HFTokenizer:
    """data.tokenizer_path: a tokenizer.json (Hugging Face's, or a Foundry checkpoint's holding an
    hf tokenizer), a Hugging Face folder, or a Foundry run / checkpoint folder."""
    path = os.path.expanduser(os.path.expandvars(path))
    for candidate in (os.path.join(path, "checkpoint", "tokenizer.json"), os.path.join(path, "tokenizer.json")):
        if os.path.isdir(path) and os.path.isfile(candidate):
            path = candidate
            break
    if not os.path.isfile(path):
        raise UserError(f"data.tokenizer_path: {path} is not a tokenizer.json or a folder holding one")
    data = _read_json(path)
    if isinstance(data, dict) and "kind" in data:  # a Foundry checkpoint's tokenizer.json
        if data["kind"] != HFTokenizer.name:
            raise UserError(f"data.tokenizer_path: {path} holds a {data['kind']!r} tokenizer; "
                            f"set data.tokenizer: {data['kind']} instead")
        return HFTokenizer.from_dict(data)
    return HFTokenizer.from_folder(os.path.dirname(path)) if os.path.basename(path) == "tokenizer.json" \
        else HFTokenizer(data)


def fixed_tokenizer(data_cfg):
    """The tokenizer data.tokenizer_path names when data.tokenizer is hf; None for the kinds built
    from the corpus."""
    if data_cfg.tokenizer != HFTokenizer.name:
        return None
    if not data_cfg.tokenizer_path:
        raise UserError("data.tokenizer: hf needs data.tokenizer_path (a tokenizer.json, or a folder holding one)")
    return load_tokenizer_file(data_cfg.tokenizer_path)
