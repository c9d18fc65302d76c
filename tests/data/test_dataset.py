"""load_dataset, the split, the token cache and get_batch: python -m pytest tests/data/test_dataset.py"""
import json
import os
import shutil
import threading

import numpy as np
import pytest
import torch

from foundry.config import CurriculumConfig, DataConfig
from foundry.data import (
    DOCUMENT_SEPARATOR,
    get_batch,
    load_dataset,
    split_documents,
    tokenizer_from_json,
)
from foundry.data.cache import cache_root
from foundry.errors import UserError

TEXT = "".join(f"Line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(400))


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_split_of_a_single_text_is_the_last_fraction():
    train, val = split_documents([TEXT], 0.1)
    cut = int(len(TEXT) * 0.9)
    assert train == [TEXT[:cut]] and val == [TEXT[cut:]]
    assert split_documents([TEXT], 0.1) == (train, val)


def test_split_of_documents_cuts_the_straddling_one():
    assert split_documents(["aaaa", "bbbb", "cc"], 0.2) == (["aaaa", "bbbb"], ["cc"])
    assert split_documents(["aaaa", "bbbb", "cc"], 0.1) == (["aaaa", "bbbb", "c"], ["c"])
    with pytest.raises(UserError, match="too small to split"):
        split_documents(["a"], 0.1)


def test_text_file_byte_dataset_and_cache_hit(text_file, tmp_path):
    cfg = DataConfig(source=str(text_file), tokenizer="byte")
    first = load_dataset(cfg, cache_dir=tmp_path / "cache")
    cut = int(len(TEXT) * 0.9)
    assert first.meta["cache"] == "miss" and first.train.dtype == np.uint16
    assert bytes(first.train.tolist()).decode() == TEXT[:cut] and bytes(first.val.tolist()).decode() == TEXT[cut:]
    assert first.val_bytes_per_token == 1.0 and isinstance(first.train, np.memmap)
    second = load_dataset(cfg, cache_dir=tmp_path / "cache")
    assert second.meta["cache"] == "hit" and second.tokenizer == first.tokenizer
    assert np.array_equal(second.train, first.train) and np.array_equal(second.val, first.val)
    manifest = json.loads(open(os.path.join(second.meta["cache_dir"], "manifest.json")).read())
    assert manifest["source_hash"] == first.meta["source_hash"] and manifest["tokenizer"] == "byte"
    assert manifest["dtype"] == "uint16" and manifest["train_tokens"] == len(first.train)
    assert manifest["val_fraction"] == 0.1 and manifest["format"] == "none" and manifest["curriculum"] == "none"


def test_changed_source_or_settings_rebuild_and_stale_entries_go(text_file, tmp_path):
    cache = tmp_path / "cache"
    cfg = DataConfig(source=str(text_file), tokenizer="char")
    old = load_dataset(cfg, cache_dir=cache)
    text_file.write_text(TEXT + "A brand new line with new letters: XYZ\n", encoding="utf-8")
    new = load_dataset(cfg, cache_dir=cache)
    assert new.meta["cache"] == "miss" and new.tokenizer.vocab_size > old.tokenizer.vocab_size
    assert not os.path.exists(old.meta["cache_dir"])  # the stale entry of the same source is removed
    assert load_dataset(cfg, cache_dir=cache).meta["cache"] == "hit"
    other = load_dataset(DataConfig(source=str(text_file), tokenizer="char", val_fraction=0.2), cache_dir=cache)
    assert other.meta["cache"] == "miss" and len(other.val) > len(new.val)


def test_broken_entry_and_crash_leftovers_are_rebuilt(text_file, tmp_path):
    cache = tmp_path / "cache"
    cfg = DataConfig(source=str(text_file))
    ds = load_dataset(cfg, cache_dir=cache)
    os.remove(os.path.join(ds.meta["cache_dir"], "val.npy"))             # a damaged entry
    os.makedirs(cache / "tokens" / ".tmp-crashed")                       # what a crash mid-build leaves
    again = load_dataset(cfg, cache_dir=cache)
    assert again.meta["cache"] == "miss" and np.array_equal(again.val, ds.val)
    assert load_dataset(cfg, cache_dir=cache).meta["cache"] == "hit"


def test_concurrent_loads_both_succeed(text_file, tmp_path):
    cfg = DataConfig(source=str(text_file), tokenizer="char")
    results, errors = [], []

    def load():
        try:
            results.append(load_dataset(cfg, cache_dir=tmp_path / "cache"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(np.array_equal(r.train, results[0].train) for r in results)
    assert [n for n in os.listdir(tmp_path / "cache" / "tokens") if n.startswith(".tmp")] == []


def test_unwritable_cache_falls_back_to_memory(text_file, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    ds = load_dataset(DataConfig(source=str(text_file)), cache_dir=blocker)
    assert ds.meta["cache"] == "off" and "cache_error" in ds.meta and len(ds.train) > 0


def test_cache_root_resolution(monkeypatch, tmp_path):
    assert cache_root(tmp_path / "x") == str(tmp_path / "x")
    monkeypatch.setenv("FOUNDRY_CACHE", str(tmp_path / "env"))
    assert cache_root() == str(tmp_path / "env")
    monkeypatch.delenv("FOUNDRY_CACHE")
    assert cache_root() == os.path.expanduser("~/.cache/foundry")


def test_large_vocabulary_uses_uint32(tmp_path):
    text = "".join(chr(0x10000 + i) for i in range(70_000)) * 2
    (tmp_path / "wide.txt").write_text(text, encoding="utf-8")
    ds = load_dataset(DataConfig(source=str(tmp_path / "wide.txt"), tokenizer="char"), cache_dir=tmp_path / "c")
    assert ds.tokenizer.vocab_size == 70_000 and ds.train.dtype == np.uint32 and int(ds.train.max()) >= 65_536


def test_bpe_dataset_saves_and_reloads_its_tokenizer(text_file, tmp_path):
    cfg = DataConfig(source=str(text_file), tokenizer="bpe", bpe_vocab_size=300)
    first = load_dataset(cfg, cache_dir=tmp_path / "cache")
    second = load_dataset(cfg, cache_dir=tmp_path / "cache")
    assert second.meta["cache"] == "hit" and second.tokenizer == first.tokenizer
    assert second.tokenizer.vocab_size == 300 and first.val_bytes_per_token > 1.5
    assert first.tokenizer.decode(first.val.tolist()) == TEXT[int(len(TEXT) * 0.9):]
    assert tokenizer_from_json(first.tokenizer.to_json()).encode(TEXT) == first.tokenizer.encode(TEXT)


def test_jsonl_chat_format_and_length_curriculum(tmp_path):
    answers = ["x" * n for n in (30, 5, 50, 10, 20, 40, 8, 60, 15, 25)]
    rows = [{"instruction": f"Q{i}", "output": a} for i, a in enumerate(answers)]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    plain = load_dataset(DataConfig(source=str(path), format="llama3", val_fraction=0.2), cache_dir=tmp_path / "c")
    text = plain.tokenizer.decode(plain.train.tolist())
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ0<|eot_id|>")
    ordered = load_dataset(DataConfig(source=str(path), format="llama3", val_fraction=0.2,
                                       curriculum=CurriculumConfig(by="length")),
                           cache_dir=tmp_path / "c")
    stream = ordered.tokenizer.decode(ordered.train.tolist())
    docs = [d.removesuffix(DOCUMENT_SEPARATOR) for d in stream.split("<|begin_of_text|>")[1:]]
    assert [len(d) for d in docs] == sorted(len(d) for d in docs) and "Q1<" in docs[0]
    assert np.array_equal(ordered.val, plain.val)            # the curriculum never touches validation
    assert ordered.meta["curriculum"] == "length" and ordered.meta["format"] == "llama3"


def test_get_batch_shapes_shift_and_determinism():
    tokens = np.arange(1000, dtype=np.uint16)
    x, y = get_batch(tokens, 8, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == torch.int64
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(y, x + 1) and torch.equal(x[:, 1:], y[:, :-1])
    x2, y2 = get_batch(tokens, 8, 16, np.random.default_rng(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = get_batch(tokens, 8, 16, np.random.default_rng(1))
    assert not torch.equal(x, x3)
    edge, _ = get_batch(np.arange(17, dtype=np.uint16), 4, 16, np.random.default_rng(0))  # only one window fits
    assert torch.equal(edge, torch.arange(16).expand(4, 16))
    with pytest.raises(UserError, match="too short for model.block_size=16"):
        get_batch(np.arange(16, dtype=np.uint16), 4, 16, np.random.default_rng(0))


def test_builtin_dataset_records_files_and_hash(tmp_path):
    ds = load_dataset(DataConfig(), cache_dir=tmp_path / "cache")   # the default: builtin + byte
    meta = ds.meta
    assert meta["source"] == "builtin" and meta["tokenizer"] == "byte" and ds.tokenizer.vocab_size == 256
    assert meta["files"] >= 50 and meta["first_file"].endswith(".py") and len(meta["source_hash"]) == 64
    assert meta["train_tokens"] > 1_000_000 and 0.08 < meta["val_tokens"] / meta["train_tokens"] < 0.13
    assert json.dumps(meta)  # goes into summary.json as is
    manifest = json.loads(open(os.path.join(meta["cache_dir"], "manifest.json")).read())
    assert manifest["source_meta"]["file_list"][0] == meta["first_file"]
    x, y = get_batch(ds.train, 2, 32, np.random.default_rng(0))
    assert ds.tokenizer.decode(x[0].tolist())  # real stdlib text comes back out
    assert load_dataset(DataConfig(), cache_dir=tmp_path / "cache").meta["cache"] == "hit"


def test_tiny_shakespeare_char_matches_nanogpt(tmp_path):
    assert os.environ.get("FOUNDRY_DATA"), "FOUNDRY_DATA must point at the shared data folder"
    ds = load_dataset(DataConfig(source="$FOUNDRY_DATA/tinyshakespeare.txt", tokenizer="char"),
                      cache_dir=tmp_path / "cache")
    assert ds.tokenizer.vocab_size == 65 and ds.tokenizer.chars[:3] == "\n !"
    assert (len(ds.train), len(ds.val)) == (1_003_854, 111_540)   # nanoGPT's 90/10 split
    assert ds.tokenizer.decode(ds.train[:14].tolist()) == "First Citizen:"
    assert ds.val_bytes_per_token == 1.0


def test_missing_source_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_A_VAR_FOR_FOUNDRY", raising=False)
    with pytest.raises(UserError, match="NOT_A_VAR_FOR_FOUNDRY is not set"):
        load_dataset(DataConfig(source="$NOT_A_VAR_FOR_FOUNDRY/x.txt"), cache_dir=tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(source=str(tmp_path / "absent.txt")), cache_dir=tmp_path)
    shutil.rmtree(tmp_path)
