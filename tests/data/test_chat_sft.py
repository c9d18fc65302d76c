"""Chat SFT: markers as BPE special tokens, loss on assistant turns only, a constitution as system message.

    python -m pytest tests/data/test_chat_sft.py -q
"""
import json

import numpy as np
import pytest

from foundry import catalog
from foundry.config import DataConfig
from foundry.data import load_dataset
from foundry.data.constitution import BUILTIN_CONSTITUTION, load_constitution, system_message
from foundry.data.formats import SPECIAL_TOKENS, render_spans
from foundry.errors import UserError
from foundry.training.objectives import NextToken

MARKERS = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "alpaca": ""}  # end-of-turn marker inside the loss span


@pytest.fixture
def chats(tmp_path):
    """Conversations whose user turns use only the letter u and whose assistant turns only the letter a."""
    rows = [{"messages": [{"role": "user", "content": "u" * (3 + i % 5)}, {"role": "assistant", "content": "a" * (2 + i % 7)},
                          {"role": "user", "content": "uu"}, {"role": "assistant", "content": "aaa"}]}
            for i in range(200)]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _config(source, fmt, **data):
    return catalog.from_dict({"data": {"source": source, "format": fmt, **data},
                              "model": {"block_size": 32}, "train": {"batch_size": 32}, "budget": {"steps": 1}})


@pytest.mark.parametrize("fmt", list(SPECIAL_TOKENS))
def test_chat_markers_are_atomic_bpe_tokens(chats, fmt):
    data = load_dataset(DataConfig(source=chats, format=fmt, tokenizer="bpe", bpe_vocab_size=300))
    for marker in SPECIAL_TOKENS[fmt]:
        assert len(data.tokenizer.encode(marker)) == 1, marker


def test_without_a_chat_format_markers_are_ordinary_text(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"<|im_start|>user {i}<|im_end|>"}) for i in range(200)) + "\n")
    data = load_dataset(DataConfig(source=str(path), tokenizer="bpe", bpe_vocab_size=300))
    assert len(data.tokenizer.encode("<|im_start|>")) > 1


@pytest.mark.parametrize("packing", ["random", "bin"])
@pytest.mark.parametrize("fmt", list(MARKERS))
def test_loss_covers_assistant_turns_only(chats, fmt, packing):
    objective = NextToken(_config(chats, fmt, loss_on="assistant", packing=packing), "cpu")
    x, y, _ = objective.batch(np.random.default_rng(0))
    targets = bytes(y[y >= 0].tolist()).decode()
    assert set(targets) == set("a" + MARKERS[fmt])          # assistant text and its end-of-turn marker only
    assert targets.count("a") > 5
    everything = NextToken(_config(chats, fmt, packing=packing), "cpu")
    _, y_all, _ = everything.batch(np.random.default_rng(0))
    assert "u" in bytes(y_all[y_all >= 0].tolist()).decode()  # loss_on: all trains on the user turns too
    assert objective.data.meta["loss_tokens"] < len(objective.data.train) / 2


def test_spans_mark_each_assistant_turn():
    text, spans = render_spans("chatml", {"instruction": "Add 2 and 2.", "output": "4"}, "t:1")
    assert [text[a:b] for a, b in spans] == ["4<|im_end|>"]
    with pytest.raises(UserError, match="private-use"):
        render_spans("chatml", {"instruction": "\ue000", "output": "4"}, "t:1")


def test_constitution_becomes_the_system_message(chats):
    data = load_dataset(DataConfig(source=chats, format="chatml", constitution=BUILTIN_CONSTITUTION))
    text = data.tokenizer.decode(data.train[:2000].tolist())
    system = system_message(load_constitution(BUILTIN_CONSTITUTION))
    assert text.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nuuu")
    assert "Say only what you believe is true" in system and system.count("\n- ") == 8  # one line per principle
    plain = load_dataset(DataConfig(source=chats, format="chatml"))
    assert plain.meta["source_hash"] != data.meta["source_hash"]


@pytest.mark.parametrize("data,message", [
    ({"loss_on": "assistant"}, "need a chat format"),
    ({"loss_on": "prompt"}, "valid: all, assistant"),
    ({"constitution": "c.yaml"}, "need a chat format"),
])
def test_chat_settings_are_checked(data, message):
    with pytest.raises(catalog.ConfigError, match=message):
        catalog.from_dict({"data": data, "budget": {"steps": 1}})


def test_a_bad_constitution_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("principles:\n  - id: x\n    text: be kind\n")
    with pytest.raises(UserError, match=r"c.yaml: principles\[0\] needs non-empty strings"):
        load_constitution(path)
