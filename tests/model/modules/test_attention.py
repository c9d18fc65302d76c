"""What each attention / position variant lets a token see: sliding window, sparse pattern,
ALiBi slopes and bias, no position at all, and MLA's compressed cache.

    python -m pytest tests/modules/test_attention.py -q
"""
import math

import torch

from foundry.model.gpt import GPT
from foundry.model.modules.alibi import alibi_slopes
from foundry.model.modules.sparse import sparse_mask


def changed_positions(model, idx, position: int):
    """Positions whose logits move when the token at `position` is replaced."""
    other = idx.clone()
    other[:, position] = (other[:, position] + 1) % model.cfg.vocab_size
    with torch.no_grad():
        delta = (model(idx) - model(other)).abs().amax(dim=(0, 2))  # (T,)
    return set(torch.nonzero(delta > 1e-6).flatten().tolist())


def test_sliding_window_looks_back_exactly_window_tokens(tiny_config):
    torch.manual_seed(0)
    model = GPT(tiny_config("attention", "sliding_window", n_layer=1, window=5,
                            position="none").model).eval()
    idx = torch.randint(0, 256, (1, 16))
    assert changed_positions(model, idx, 3) == {3, 4, 5, 6, 7}  # queries 3 .. 3 + window - 1


def test_sparse_mask_is_block_local_plus_strided_summaries():
    q = k = torch.arange(12)
    mask = sparse_mask(q, k, block=4, stride=3)  # (12, 12)
    assert torch.nonzero(mask[9]).flatten().tolist() == [2, 5, 8, 9]  # summaries 2, 5, 8; block 8..11
    assert torch.nonzero(mask[3]).flatten().tolist() == [0, 1, 2, 3]  # own block 0..3
    assert not (mask & ~torch.tril(torch.ones(12, 12, dtype=torch.bool))).any()  # causal


def test_sparse_attention_follows_its_mask(tiny_config):
    torch.manual_seed(0)
    model = GPT(tiny_config("attention", "sparse", n_layer=1, window=4, stride=3,
                            position="none").model).eval()
    idx = torch.randint(0, 256, (1, 16))
    # key 1 is neither a summary column (1 % 3 != 2) nor in later blocks: seen by 1, 2, 3 only
    assert changed_positions(model, idx, 1) == {1, 2, 3}
    # key 5 is a summary column: seen by its block (5, 6, 7) and by every later query
    assert changed_positions(model, idx, 5) == set(range(5, 16))


def test_alibi_slopes_match_the_paper():
    assert alibi_slopes(8) == [2 ** -(i + 1) for i in range(8)]
    assert alibi_slopes(6) == [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]


def test_alibi_bias_is_minus_slope_times_distance(tiny_config):
    model = GPT(tiny_config("position", "alibi").model)
    q_pos, k_pos = torch.arange(5, 7), torch.arange(7)
    bias = model.position.bias(4, q_pos, k_pos)  # (H, Tq, Tk)
    assert bias.shape == (4, 2, 7)
    assert math.isclose(bias[0, 1, 2].item(), -0.25 * (6 - 2))
    assert math.isclose(bias[3, 0, 5].item(), 0.0)


def test_no_position_sees_a_bag_of_earlier_tokens(tiny_config):
    """Without a position signal, the last token's output ignores the order of earlier ones."""
    torch.manual_seed(0)
    model = GPT(tiny_config("position", "none", n_layer=1).model).eval()
    idx = torch.randint(0, 256, (1, 10))
    shuffled = torch.cat([idx[:, :-1].flip(1), idx[:, -1:]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[:, -1], model(shuffled)[:, -1], atol=1e-5, rtol=1e-5)
    rope = GPT(tiny_config("position", "rope", n_layer=1).model).eval()
    with torch.no_grad():
        assert not torch.allclose(rope(idx)[:, -1], rope(shuffled)[:, -1], atol=1e-5)


def test_mla_caches_only_the_latent_and_the_rope_key(tiny_config):
    cfg = tiny_config("attention", "mla", kv_lora_rank=6, rope_dim=4, qk_norm=True).model
    model = GPT(cfg).eval()
    attn = model.blocks[0].attn
    assert attn.q_norm is not None and attn.k_norm is not None  # qk_norm honoured
    caches = [{} for _ in model.blocks]
    with torch.no_grad():
        model(torch.randint(0, 256, (2, 7)), caches, 0)
    assert set(caches[0]) == {"latent", "k_rope"}
    assert caches[0]["latent"].shape == (2, 7, 6) and caches[0]["k_rope"].shape == (2, 7, 4)


def test_mla_defaults(tiny_config):
    attn = GPT(tiny_config("attention", "mla").model).blocks[0].attn
    assert (attn.rank, attn.rope_dim, attn.nope_dim) == (8, 4, 4)  # n_embd // 4, head_dim // 2, rest
