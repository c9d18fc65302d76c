"""foundry.model: shapes, KV-cache generation, stop tokens, options, counts."""
import pytest
import torch

from foundry.catalog import from_dict
from foundry.model.gpt import GPT


def make(**model):
    base = {"vocab_size": 50, "n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 24}
    return from_dict({"model": {**base, **model}, "budget": {"steps": 1}}).model


def test_forward_shapes_and_block_size_limit():
    model = GPT(make())
    idx = torch.randint(0, 50, (3, 24))
    assert model(idx).shape == (3, 24, 50)
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.randint(0, 50, (1, 25)))


@pytest.mark.parametrize("options", [{}, {"attention": "gqa", "n_kv_head": 1}, {"position": "learned"},
                                     {"qk_norm": True}, {"norm": "layernorm", "bias": True}])
def test_incremental_decoding_matches_full_forward(options):
    torch.manual_seed(0)
    model = GPT(make(**options)).eval()
    idx = torch.randint(0, 50, (2, 20))
    full = model(idx)
    caches = [{} for _ in model.blocks]
    parts = [model(idx[:, :7], caches, 0)] + [model(idx[:, t:t + 1], caches, t) for t in range(7, 20)]
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_greedy_generate_equals_argmax_of_uncached_forward():
    torch.manual_seed(0)
    model = GPT(make()).eval()
    idx = torch.randint(0, 50, (2, 5))
    out = model.generate(idx, 10, temperature=0)
    expected = idx
    for _ in range(10):
        expected = torch.cat([expected, model(expected)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)


def test_generate_stops_at_block_size_and_stop_tokens():
    torch.manual_seed(0)
    model = GPT(make()).eval()
    idx = torch.randint(0, 50, (1, 5))
    assert model.generate(idx, 100, temperature=1.0, top_k=5).shape[1] == 24
    first = model.generate(idx, 1, temperature=0)[0, -1].item()
    stopped = model.generate(idx, 10, temperature=0, stop_tokens={first})
    assert stopped.shape[1] == 6 and stopped[0, -1].item() == first


def test_tied_embeddings_and_counts():
    tied, untied = GPT(make()), GPT(make(tie_embeddings=False))
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.num_params() - tied.num_params() == 50 * 32
    # the lm_head matmul costs the same whether or not its weight is shared
    assert tied.flops_per_token() == untied.flops_per_token()
    n = tied.num_params(non_embedding=True) + 50 * 32
    assert tied.flops_per_token() == 6 * n + 6 * 2 * 24 * 32


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = GPT(make())
    ckpt = GPT(make(gradient_checkpointing=True))
    ckpt.load_state_dict(plain.state_dict())
    idx = torch.randint(0, 50, (2, 24))
    for m in (plain, ckpt):
        m(idx).sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_dropout_only_in_training():
    model = GPT(make(dropout=0.5))
    idx = torch.randint(0, 50, (1, 10))
    model.eval()
    assert torch.equal(model(idx), model(idx))
    model.train()
    assert not torch.equal(model(idx), model(idx))


def test_layers_can_differ_and_still_decode_exactly():
    torch.manual_seed(0)
    cfg = make(n_layer=3, layers={"0::2": {"attention": "sliding_window", "window": 6, "qk_norm": True},
                                  "1": {"ffn": "moe", "activation": "swiglu"}})
    model = GPT(cfg).eval()
    kinds = [(type(b.attn).__name__, type(b.ffn).__name__) for b in model.blocks]
    assert kinds == [("SlidingWindowAttention", "DenseFFN"), ("MultiHeadAttention", "MixtureOfExperts"),
                     ("SlidingWindowAttention", "DenseFFN")]
    assert model.blocks[0].attn.q_norm is not None and model.blocks[1].attn.q_norm is None
    idx = torch.randint(0, 50, (2, 20))
    full = model(idx)
    caches = [{} for _ in model.blocks]
    parts = [model(idx[:, :7], caches, 0)] + [model(idx[:, t:t + 1], caches, t) for t in range(7, 20)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    uniform = GPT(make(n_layer=3))
    assert model.num_params() > uniform.num_params()  # the MoE layer holds 4 experts
