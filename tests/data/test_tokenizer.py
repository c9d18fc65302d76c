"""Tokenizer round-trips, JSON save/load and the registry: python -m pytest tests/data/test_tokenizer.py"""
import json

import numpy as np
import pytest

from foundry.data import TOKENIZERS, HFTokenizer, build_tokenizer, load_tokenizer_file, tokenizer_from_json
from foundry.errors import UserError

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
          "def f(x):\n    return x * 2  # doubled\n") * 20
SAMPLES = ["hear me speak", "def f(x):\n    return x", "", "  spaces  and  newlines\n\n"]


def make(kind):
    """A tokenizer of `kind` for CORPUS; hf is loaded, never trained: a trained BPE's tokenizer.json."""
    if kind == "hf":
        return build_tokenizer("bpe", CORPUS, bpe_vocab_size=300).to_hf()
    return build_tokenizer(kind, CORPUS, bpe_vocab_size=300)


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_round_trip_and_json(kind):
    tok = make(kind)
    assert tok.name == kind
    for text in SAMPLES + [CORPUS]:
        ids = tok.encode(text)
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == text
        assert np.array_equal(tok.encode_array(text), np.asarray(ids, dtype=np.int64).reshape(-1))
    rebuilt = tokenizer_from_json(tok.to_json())
    assert type(rebuilt) is type(tok) and rebuilt == tok
    assert rebuilt.vocab_size == tok.vocab_size and rebuilt.to_json() == tok.to_json()
    assert rebuilt.encode(CORPUS) == tok.encode(CORPUS)


def test_byte_handles_any_unicode():
    tok = build_tokenizer("byte", "")
    text = "naïve café — 日本語 🚀 Ωmega"
    ids = tok.encode(text)
    assert tok.vocab_size == 256 and len(ids) == len(text.encode("utf-8")) > len(text)
    assert tok.decode(ids) == text
    cut = tok.encode("日")[:2]                          # 3 bytes in UTF-8; keep 2
    assert tok.decode(cut) == "\ufffd"                  # a cut character decodes, never raises


def test_char_vocabulary_is_sorted_and_deterministic():
    a = build_tokenizer("char", "banana bread")
    b = build_tokenizer("char", "bread banana")
    assert a.chars == " abdenr" and a.vocab_size == 7 and a == b
    assert a.encode("ab") == [1, 2]
    with pytest.raises(UserError, match="'z' is not in the vocabulary"):
        a.encode("zebra")
    text = "ünïcödé 日本"
    assert build_tokenizer("char", text).decode(build_tokenizer("char", text).encode(text)) == text


def test_bpe_is_deterministic_learns_merges_and_handles_unseen_text():
    a = build_tokenizer("bpe", CORPUS, bpe_vocab_size=300)
    b = build_tokenizer("bpe", CORPUS, bpe_vocab_size=300)
    assert a.to_json() == b.to_json() and a.vocab_size == 300
    assert len(a.encode("hear me speak")) < len("hear me speak")   # merges compress seen text
    unseen = "Ωmega 🚀 zzz"
    assert a.decode(a.encode(unseen)) == unseen                     # byte fallback: nothing is unknown
    with pytest.raises(UserError, match="bpe_vocab_size"):
        build_tokenizer("bpe", CORPUS, bpe_vocab_size=100)


def test_unknown_kind_and_bad_json_are_user_errors():
    with pytest.raises(UserError, match="valid: bpe, byte, char"):
        build_tokenizer("wordpiece", CORPUS)
    with pytest.raises(UserError, match="valid: bpe, byte, char"):
        tokenizer_from_json(json.dumps({"kind": "wordpiece"}))
    with pytest.raises(UserError, match="not valid JSON"):
        tokenizer_from_json("{nope")
    with pytest.raises(UserError, match="'kind'"):
        tokenizer_from_json("[]")


def test_bpe_parallel_chunks_encode_exactly_like_one_call(monkeypatch):
    import foundry.data.tokenizer as tokenizer_module
    tok = build_tokenizer("bpe", CORPUS, bpe_vocab_size=300)
    text = "".join(f"class C{i}:\n    def f(self):\n\n        return {i}  \n  \n" for i in range(300))
    monkeypatch.setattr(tokenizer_module, "BPE_CHUNK_CHARS", 100)   # force hundreds of chunks
    assert tok.encode_array(text).tolist() == tok.encode(text)


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_every_kind_exports_as_an_equivalent_tokenizer_json(kind, tmp_path):
    """to_hf() (what foundry zoo export writes) gives the same ids as the tokenizer itself, and
    transformers reads the file back to the same ids."""
    from transformers import PreTrainedTokenizerFast
    tok = make(kind)
    hf = tok.to_hf()
    assert isinstance(hf, HFTokenizer) and hf.vocab_size == tok.vocab_size
    (tmp_path / "tokenizer.json").write_text(json.dumps(hf.spec))
    loaded = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    for text in SAMPLES + [CORPUS]:
        assert hf.encode(text) == tok.encode(text)
        assert loaded(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
        assert hf.decode(tok.encode(text)) == text


def test_hf_tokenizer_loads_from_files_and_folders_and_is_never_trained(tmp_path):
    hf = make("hf")
    hf.special["eos_token"] = hf.id_to_token(5)
    (tmp_path / "tokenizer.json").write_text(json.dumps(hf.spec))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": hf.id_to_token(5)}}))
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "tokenizer.json").write_text(hf.to_json())
    for path in (tmp_path, tmp_path / "tokenizer.json", tmp_path / "run", tmp_path / "run" / "checkpoint"):
        loaded = load_tokenizer_file(str(path))
        assert loaded == hf and loaded.token_id("eos_token") == 5
    (tmp_path / "byte.json").write_text(build_tokenizer("byte", "").to_json())
    with pytest.raises(UserError, match="holds a 'byte' tokenizer; set data.tokenizer: byte"):
        load_tokenizer_file(str(tmp_path / "byte.json"))
    with pytest.raises(UserError, match="is not a tokenizer.json or a folder holding one"):
        load_tokenizer_file(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="never trained"):
        build_tokenizer("hf", CORPUS)
