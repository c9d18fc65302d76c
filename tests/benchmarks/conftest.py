"""Fixtures for the benchmark tests: tiny models (a random GPT, a bigram table, a saved Hugging Face
GPT-2) and a tiny data folder in the upstream layouts of GSM8K, MMLU, HumanEval and preference pairs."""
import gzip
import json

import pytest
import torch

from foundry import catalog
from foundry.benchmarks.lm import LanguageModel
from foundry.benchmarks.targets import FoundryLM
from foundry.data import ByteTokenizer
from foundry.model.gpt import GPT


def tiny_config(block_size: int = 64):
    # fp32: the scoring tests compare batched and direct computations to 1e-4; `auto` would be bf16
    # on a CPU with AMX / AVX512-BF16 (foundry.hardware.compute_dtype)
    return catalog.from_dict({"model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": block_size,
                                       "vocab_size": 256}, "train": {"dtype": "fp32"}, "budget": {"steps": 1}})


@pytest.fixture
def tiny_lm():
    """A random byte-level Foundry GPT (2 layers, 32 wide, 64-token context)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    return FoundryLM(GPT(cfg.model), ByteTokenizer(), cfg)


class BigramLM(LanguageModel):
    """A real (if tiny) byte-level language model: the next byte depends only on the current one.

    `follow` maps a character to the character it predicts with high probability; every other
    next byte gets a small uniform share. Deterministic, so task results can be asserted exactly.
    """
    device = "cpu"
    block_size = 256
    vocab_size = 256

    def __init__(self, follow: dict, block_size: int = 256):
        super().__init__()
        self.block_size = block_size
        self.table = torch.zeros(256, 256)  # (current byte, next byte) logits
        for cur, nxt in follow.items():
            self.table[ord(cur), ord(nxt)] = 10.0

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")

    def forward(self, ids):  # (B, T) -> (B, T, 256)
        return self.table[ids]

    def new_cache(self):
        return None

    def forward_cached(self, ids, cache, start):
        return self.table[ids]


@pytest.fixture
def bigram():
    return BigramLM


GSM8K_ROWS = [
    {"question": "Tom has 40 apples and buys 2 more. How many?", "answer": "40+2=<<40+2=42>>42\n#### 42"},
    {"question": "A pen costs $1,250. Two pens?", "answer": "2*1250=<<2*1250=2500>>2500\n#### 2,500"},
    {"question": "Temperature 3 minus 10?", "answer": "3-10=-7\n#### -7"},
]
MMLU_ROWS = {
    "algebra": [["1+1?", "2", "3", "4", "5", "A"], ["2*2?", "1", "4", "3", "2", "B"], ["3-1?", "0", "1", "2", "3", "C"]],
    "world_history": [["Year of X?", "1066", "1492", "1776", "1914", "B"], ['Say "hi, there"?', "a", "b", "c", "d", "D"]],
}
HUMANEVAL_ROWS = [
    {"task_id": "T/0", "prompt": "def add(a, b):\n    \"\"\"Sum.\"\"\"\n", "entry_point": "add",
     "canonical_solution": "    return a + b\n", "test": "def check(f):\n    assert f(1, 2) == 3\n"},
    {"task_id": "T/1", "prompt": "def neg(a):\n", "entry_point": "neg",
     "canonical_solution": "    return -a\n", "test": "def check(f):\n    assert f(3) == -3\n"},
]
PREFERENCE_ROWS = [{"prompt": "Q: be kind?\nA:", "chosen": " yes", "rejected": " no"},
                   {"prompt": "Q: lie?\nA:", "chosen": " no", "rejected": " yes"}]


def write_jsonl(path, rows, gz=False):
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


@pytest.fixture
def tiny_data(tmp_path):
    """DATA/{gsm8k,mmlu,humaneval,preference.jsonl} holding a few items each, in the upstream formats."""
    import csv

    root = tmp_path / "data"
    (root / "gsm8k").mkdir(parents=True)
    write_jsonl(root / "gsm8k" / "test.jsonl", GSM8K_ROWS)
    write_jsonl(root / "gsm8k" / "train.jsonl", GSM8K_ROWS[:2])
    for split in ("dev", "test"):
        (root / "mmlu" / split).mkdir(parents=True)
        for subject, rows in MMLU_ROWS.items():
            with open(root / "mmlu" / split / f"{subject}_{split}.csv", "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(rows)
    (root / "humaneval").mkdir()
    write_jsonl(root / "humaneval" / "HumanEval.jsonl.gz", HUMANEVAL_ROWS, gz=True)
    write_jsonl(root / "preference.jsonl", PREFERENCE_ROWS)
    return str(root)


@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory):
    """A random 2-layer, 64-wide GPT-2 with a byte-level BPE tokenizer (no merges), saved offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("hf") / "hf-tiny"
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab["<|endoftext|>"] = eos = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(folder)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=64, n_layer=2, n_head=2,
                                       bos_token_id=eos, eos_token_id=eos))
    model.eval().save_pretrained(folder)
    return str(folder)


@pytest.fixture
def foundry_checkpoint(tmp_path, tiny_lm):
    """tiny_lm saved the way the trainer saves it: RUN/checkpoint/{model.safetensors, config.yaml, ...}."""
    from foundry.weights.checkpoint import save_checkpoint

    run = tmp_path / "run"
    optimizer = torch.optim.SGD(tiny_lm.model.parameters(), lr=0.1)
    save_checkpoint(str(run), tiny_lm.model, optimizer, tiny_lm.cfg, tiny_lm.tokenizer, {"step": 0})
    return str(run)


@pytest.fixture
def data_env(monkeypatch, tiny_data):
    monkeypatch.setenv("FOUNDRY_DATA", tiny_data)
    return tiny_data
