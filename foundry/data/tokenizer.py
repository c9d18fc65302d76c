"""Tokenizers: `byte` (256 symbols, the default), `char` (the corpus's characters), `bpe` (byte-level BPE),
`hf` (a Hugging Face tokenizer.json used as it is: imported models' tokenizers).

    tok = build_tokenizer("char", corpus_text)          # or "byte", "bpe" (bpe_vocab_size=512)
    ids = tok.encode("hello"); tok.decode(ids) == "hello"
    tok2 = tokenizer_from_json(tok.to_json())           # rebuilds it exactly (saved with checkpoints)

    hf = tok.to_hf()                                    # any kind as an HFTokenizer (foundry zoo export)

Every tokenizer has encode(str) -> list[int], decode(list[int]) -> str, encode_array(str) -> np.ndarray
(the fast path used to build the token cache), vocab_size, name, to_json() and to_hf(). To add a kind,
write a class with those members plus `train(text, bpe_vocab_size, special_tokens)` and `from_dict(dict)`
classmethods and add it to TOKENIZERS at the end of this file. `hf` (hf_tokenizer.py) is the one kind that
is never trained: the data pipeline loads it from `data.tokenizer_path`.
"""
from __future__ import annotations

import json
import re

import numpy as np

from foundry.data.hf_tokenizer import HFTokenizer, hf_from_vocab
from foundry.errors import UserError

BPE_CHUNK_CHARS = 1 << 16
_SAFE_CUT = re.compile(r"\n(?=\S)")


class ByteTokenizer:
    """UTF-8 bytes as tokens: 256 symbols, no training, any text round-trips."""

    name = "byte"
    vocab_size = 256

    @classmethod
    def train(cls, text: str, bpe_vocab_size: int = 0, special_tokens=()) -> "ByteTokenizer":
        return cls()

    @classmethod
    def from_dict(cls, data: dict) -> "ByteTokenizer":
        return cls()

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        # generated ids may cut a multi-byte character in half: replace rather than fail
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def to_json(self) -> str:
        return json.dumps({"kind": self.name})

    def to_hf(self) -> "HFTokenizer":
        """Byte-level BPE with no merges whose ids are the UTF-8 bytes (GPT-2's byte-to-unicode map)."""
        printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
        others = [b for b in range(256) if b not in printable]
        chars = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
        from tokenizers import decoders, pre_tokenizers
        return hf_from_vocab({chars[b]: b for b in range(256)},
                              pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False), decoders.ByteLevel())

    def __eq__(self, other) -> bool:
        return isinstance(other, ByteTokenizer)


class CharTokenizer:
    """One token per distinct character of the corpus, in sorted order (deterministic ids)."""

    name = "char"

    def __init__(self, chars: str):
        if not chars:
            raise UserError("char tokenizer: the corpus is empty, no characters to build a vocabulary")
        self.chars = "".join(sorted(set(chars)))
        self.vocab_size = len(self.chars)
        # sorted code points let encode_array map a whole text with one np.searchsorted
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self._index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str, bpe_vocab_size: int = 0, special_tokens=()) -> "CharTokenizer":
        return cls("".join(set(text)))

    @classmethod
    def from_dict(cls, data: dict) -> "CharTokenizer":
        chars = data.get("chars")
        if not isinstance(chars, str):
            raise UserError("char tokenizer json: missing the 'chars' string")
        return cls(chars)

    def encode_array(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(self._codes, codes)
        bad = (ids >= self.vocab_size) | (self._codes[np.minimum(ids, self.vocab_size - 1)] != codes)
        if bad.any():
            raise UserError(f"char tokenizer: character {chr(int(codes[bad.argmax()]))!r} is not in the vocabulary")
        return ids.astype(np.int64)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids if 0 <= int(i) < self.vocab_size)

    def to_json(self) -> str:
        return json.dumps({"kind": self.name, "chars": self.chars})

    def to_hf(self) -> "HFTokenizer":
        """A BPE with no merges over one token per character (characters outside it are dropped)."""
        from tokenizers import decoders
        return hf_from_vocab({c: i for i, c in enumerate(self.chars)}, None, decoders.Fuse())

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and other.chars == self.chars


class BpeTokenizer:
    """Byte-level BPE trained with the Hugging Face `tokenizers` library; any text round-trips."""

    name = "bpe"

    def __init__(self, hf_tokenizer):
        self._tok = hf_tokenizer
        self.vocab_size = hf_tokenizer.get_vocab_size()

    @classmethod
    def train(cls, text: str, bpe_vocab_size: int = 512, special_tokens=()) -> "BpeTokenizer":
        """`special_tokens` (a chat format's markers) become atomic tokens: ids 0.., never split or merged."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if bpe_vocab_size < len(alphabet):
            raise UserError(f"data.bpe_vocab_size: must be at least {len(alphabet)}, got {bpe_vocab_size}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=bpe_vocab_size, initial_alphabet=alphabet,
                                      show_progress=False, special_tokens=list(special_tokens))
        # feed lines so the trainer's word counting stays small and deterministic
        tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
        return cls(tok)

    @classmethod
    def from_dict(cls, data: dict) -> "BpeTokenizer":
        from tokenizers import Tokenizer

        spec = data.get("tokenizer")
        if not isinstance(spec, dict):
            raise UserError("bpe tokenizer json: missing the 'tokenizer' object")
        return cls(Tokenizer.from_str(json.dumps(spec)))

    def encode_array(self, text: str) -> np.ndarray:
        # Encode ~BPE_CHUNK_CHARS pieces in parallel. Cuts fall only after a newline that precedes a
        # non-space character: the byte-level pre-tokenizer splits there anyway, and BPE never merges
        # across its pieces, so the ids equal encode(text) exactly.
        chunks, start = [], 0
        while start < len(text):
            match = _SAFE_CUT.search(text, start + BPE_CHUNK_CHARS)
            end = match.end() if match else len(text)
            chunks.append(text[start:end])
            start = end
        encoded = self._tok.encode_batch(chunks, add_special_tokens=False)
        return np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encoded] + [np.zeros(0, np.int64)])

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def to_json(self) -> str:
        return json.dumps({"kind": self.name, "tokenizer": json.loads(self._tok.to_str())})

    def to_hf(self) -> "HFTokenizer":
        return HFTokenizer(json.loads(self._tok.to_str()))

    def __eq__(self, other) -> bool:
        return isinstance(other, BpeTokenizer) and other.to_json() == self.to_json()


def build_tokenizer(kind: str, text: str, bpe_vocab_size: int = 512, special_tokens=()):
    """Train (or just create) a tokenizer of `kind` on `text`; bpe keeps `special_tokens` atomic."""
    return _lookup(kind).train(text, bpe_vocab_size, special_tokens)


def tokenizer_from_json(text: str):
    """Rebuild any tokenizer from its to_json() string."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"tokenizer json: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or "kind" not in data:
        raise UserError("tokenizer json: expected an object with a 'kind' key")
    return _lookup(data["kind"]).from_dict(data)


def _lookup(kind: str):
    if kind not in TOKENIZERS:
        raise UserError(f"data.tokenizer: unknown {kind!r} (valid: {', '.join(sorted(TOKENIZERS))})")
    return TOKENIZERS[kind]


TOKENIZERS = {
    "byte": ByteTokenizer,
    "char": CharTokenizer,
    "bpe": BpeTokenizer,
    "hf": HFTokenizer,
}
