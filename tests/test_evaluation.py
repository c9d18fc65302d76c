"""foundry.evaluation: the validation slice is a fixed piece of text, whatever the batch, context or tokenizer."""
import numpy as np
import pytest
import torch

from foundry import catalog
from foundry.data.tokenizer import build_tokenizer
from foundry.evaluation import val_metrics, val_slice, val_windows
from foundry.model.gpt import GPT

TEXT = "Firſt Citizen: before we proceed any further, hear me speak.\n" * 40   # one 2-byte character a line


@pytest.mark.parametrize("kind", ["byte", "char", "bpe"])
def test_slice_is_the_first_n_bytes_for_every_tokenizer(kind):
    tok = build_tokenizer(kind, TEXT, 300)
    ids = tok.encode_array(TEXT)
    tokens, bytes_per_token = val_slice(ids, tok.decode, 1000)
    text = tok.decode(tokens)
    assert 1000 - 8 < len(text.encode()) <= 1000 and TEXT.startswith(text)    # cut at a token boundary
    scored = len(text.encode()) - len(tok.decode(tokens[:1]).encode())
    assert bytes_per_token == pytest.approx(scored / (len(tokens) - 1))
    whole, _ = val_slice(ids, tok.decode, 0)
    assert len(whole) == len(ids)
    with pytest.raises(ValueError, match="at least 2"):
        val_slice(ids[:1], tok.decode, 0)


def test_windows_score_every_token_once_whatever_the_block():
    tokens = np.arange(23)
    for block in (4, 5, 22, 64):
        windows = val_windows(tokens, block)
        targets = np.concatenate([w[:, 1:].reshape(-1) for w in windows])
        assert targets.tolist() == list(range(1, 23))                        # each once, in order
        assert all(w.shape[1] <= block + 1 for w in windows)


def test_batch_and_context_mutations_are_scored_on_the_same_text():
    """A model that ignores its context gives the same loss for any batch size and block size:
    the scored tokens are the same. (Under the old slice, eval.batches x batch_size windows of
    block_size, halving the batch halved the text.)"""
    tok = build_tokenizer("char", TEXT)
    tokens, bpt = val_slice(tok.encode_array(TEXT), tok.decode, 600)

    class Unigram(torch.nn.Module):   # logits depend on nothing but a learned bias
        def __init__(self, vocab):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.randn(vocab))

        def forward(self, x):
            return self.bias.expand(*x.shape, -1)

    torch.manual_seed(0)
    model = Unigram(tok.vocab_size)
    results = []
    for batch, block in ((16, 32), (8, 32), (16, 64), (3, 7)):
        cfg = catalog.from_dict({"model": {"block_size": block}, "train": {"batch_size": batch}, "budget": {"steps": 1}})
        results.append(val_metrics(model, tokens, cfg, bpt, "cpu")["val_loss"])
    assert max(results) - min(results) < 1e-6
    cfg = catalog.from_dict({"model": {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 16,
                                       "vocab_size": tok.vocab_size}, "budget": {"steps": 1}})
    gpt = GPT(cfg.model)
    metrics = val_metrics(gpt, tokens, cfg, bpt, "cpu")
    assert metrics["val_bpb"] == pytest.approx(metrics["val_loss"] / np.log(2) / bpt)


def test_the_old_key_says_what_replaced_it():
    with pytest.raises(catalog.ConfigError, match="eval.batches: replaced by eval.bytes"):
        catalog.from_dict({"eval": {"batches": 8}})
