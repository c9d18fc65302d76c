"""model.stages: per-stage layer settings, the two-way encoder, the latent's KL, the generation rule
(encoder skipped, latent from the prior: cached decoding equals the uncached forward for every
attention kind in a staged model), FLOPs and parameter counts through the stages."""
import dataclasses

import pytest
import torch

from foundry import catalog
from foundry.config import ConfigError, layer_config
from foundry.model.gpt import GPT
from foundry.model.modules import ATTENTION
from tests.conftest import NEEDS

STAGES = [{"name": "encoder", "kind": "encoder", "n_layer": 1},
          {"name": "latent", "kind": "latent", "d_latent": 4, "rank": 2},
          {"name": "lower", "kind": "decoder", "n_layer": 2, "mlp_ratio": 2.0},
          {"name": "upper", "kind": "decoder", "n_layer": 1, "qk_norm": True, "layers": {"0": {"n_kv_head": 1}},
           "attention": "gqa"}]


def staged(stages=STAGES, **model):
    cfg = catalog.from_dict({"model": {"n_embd": 16, "n_head": 2, "block_size": 24, "vocab_size": 37,
                                       "stages": stages, **model}, "budget": {"steps": 1}})
    torch.manual_seed(0)
    return GPT(cfg.model)


def trained_a_little(model, steps=3):
    """A few optimizer steps, so FiLM and the low-rank up projection are no longer zero."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, 37, (2, 24))
        loss = torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.roll(-1, 1).flatten())
        (loss + model.aux_loss()).backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


def test_layers_take_their_stage_settings_and_n_layer_is_derived():
    m = staged().cfg
    assert m.n_layer == 4
    assert [layer_config(m, i).mlp_ratio for i in range(4)] == [4.0, 2.0, 2.0, 4.0]
    assert layer_config(m, 3).qk_norm and layer_config(m, 3).n_kv_head == 1 and not layer_config(m, 2).qk_norm
    with pytest.raises(ConfigError, match=r"model.n_layer: 7, but model.stages hold 4 layers"):
        staged(n_layer=7)


def test_the_encoder_sees_the_whole_sequence_in_training_and_nothing_at_eval():
    model = trained_a_little(staged())
    model.train()
    x = model.wte(torch.randint(0, 37, (1, 24)))
    later = x.clone()
    later[:, -1] += 1.0  # change only the last position
    encoder = range(1)
    first = model.pipeline.encode(x, encoder, model._run_block, None, None)
    second = model.pipeline.encode(later, encoder, model._run_block, None, None)
    assert not torch.allclose(first[:, 0], second[:, 0]), "position 0 must see the last token (non-causal)"
    model.eval()
    idx = torch.randint(0, 37, (2, 24))
    before = model(idx)
    with torch.no_grad():
        for p in model.blocks[0].parameters():
            p.add_(torch.randn_like(p))
    assert torch.equal(model(idx), before), "eval must not run the encoder"
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 37
    assert torch.allclose(model(changed)[:, :10], before[:, :10], atol=1e-6), "eval is causal"


def test_the_latent_adds_its_kl_beyond_the_free_bits_and_logs_it():
    model = staged([{**s, "free_bits": 0.0, "kl_weight": 0.5} if s["kind"] == "latent" else s for s in STAGES])
    model.train()
    model(torch.randint(0, 37, (2, 24)))
    kl = model.ffn_stats()["latent/kl"]
    assert kl > 0 and torch.allclose(model.aux_loss(), 0.5 * kl)
    model.eval()
    model(torch.randint(0, 37, (2, 24)))
    assert model.aux_loss() is None and "latent/kl" not in model.ffn_stats()


def test_the_latent_reaches_the_output_after_training():
    model = trained_a_little(staged())
    latent = model.pipeline.latents["latent"]
    assert all(f.weight.abs().sum() > 0 for f in latent.film) and len(latent.film) == 2  # lower and upper
    idx = torch.randint(0, 37, (2, 24))
    model.train()
    torch.manual_seed(1)
    a = model(idx)
    torch.manual_seed(2)
    assert not torch.allclose(a, model(idx)), "different posterior samples give different logits"


@pytest.mark.parametrize("attention", sorted(ATTENTION))
@pytest.mark.parametrize("prior", ["mean", "sample"])
def test_cached_decoding_equals_the_uncached_forward_through_every_stage(attention, prior):
    extra = NEEDS.get(("attention", attention), {}).get("model", {})
    stages = [dict(s) for s in STAGES]
    stages[1]["prior"] = prior
    stages[2].update(attention=attention, **extra)
    model = trained_a_little(staged(stages))
    idx = torch.randint(0, 37, (2, 20))
    torch.manual_seed(5)
    full = model(idx)
    torch.manual_seed(5)
    caches = [{} for _ in model.blocks]
    parts = [model(idx[:, :7], caches, 0)] + [model(idx[:, t:t + 1], caches, t) for t in range(7, 20)]
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
    assert not caches[0], "the encoder keeps no cache: it never runs at generation"
    out = model.generate(idx[:, :5], 10, temperature=0)
    assert out.shape == (2, 15)


def test_flops_count_the_encoder_twice_and_params_match_the_catalog():
    model = staged()
    plain = staged([{**s, "kind": "decoder"} if s["kind"] == "encoder" else s for s in STAGES[:1]] + STAGES[2:])
    encoder = sum(p.numel() for p in model.blocks[0].parameters())
    latent = sum(p.numel() for p in model.pipeline.parameters())
    assert model.num_params() == plain.num_params() + latent
    c = model.cfg
    assert model.flops_per_token() - plain.flops_per_token() == 6 * (latent + encoder) + 6 * c.block_size * c.n_embd
    cfg = catalog.from_dict({"model": dataclasses.asdict(c), "budget": {"steps": 1}})
    assert catalog.count_params(cfg, catalog.layer_groups(cfg.model)) == model.num_params()


def test_packed_rows_keep_the_encoder_inside_each_document():
    model = trained_a_little(staged())
    model.train()
    x = model.wte(torch.randint(0, 37, (1, 24)))
    doc_ids = torch.tensor([[0] * 12 + [1] * 12])
    from foundry.model.modules.masks import packed_documents
    later = x.clone()
    later[:, 20] += 1.0  # a token of the second document
    args = (range(1), model._run_block, packed_documents(doc_ids), doc_ids)
    first, second = model.pipeline.encode(x, *args), model.pipeline.encode(later, *args)
    assert torch.allclose(first[:, :12], second[:, :12], atol=1e-6)
    assert not torch.allclose(first[:, 12:20], second[:, 12:20])
    model(torch.randint(0, 37, (1, 24)), doc_ids=doc_ids)  # the whole pipeline takes packed rows


@pytest.mark.parametrize("stages,message", [
    ([{"name": "enc", "kind": "encoder"}, {"name": "dec", "kind": "decoder"}],
     "model.stages.enc.kind: a non-causal encoder must feed a latent stage right after it"),
    ([{"name": "dec", "kind": "decoder"}, {"name": "enc", "kind": "encoder"}], "it is the last stage"),
    ([{"name": "dec", "kind": "decoder"}, {"name": "z", "kind": "latent"}], "model.stages.z: a latent stage needs a decoder"),
    ([{"name": "dec", "kind": "decoder", "attention": "nope"}], r"model.stages.dec \(layer 0\): model.attention: unknown 'nope'"),
    ([{"name": "dec", "kind": "decoder", "layers": {"2": {"qk_norm": True}}}], "model.stages.dec.layers.2: layer 2 is out of range"),
    ([{"name": "dec", "kind": "decoder", "d_latent": 3}], "model.stages.dec.d_latent: not a key of a decoder stage"),
    ([{"name": "dec", "kind": "stack"}], r"model.stages.dec.kind: unknown 'stack' \(valid: decoder, encoder, latent\)"),
    ([{"name": "a", "kind": "decoder"}, {"name": "a", "kind": "decoder"}], "model.stages.a: two stages are named 'a'"),
    ([{"name": "z", "kind": "latent", "rank": 0}, {"name": "dec", "kind": "decoder"}], r"model.stages.z.rank: must be in \[1, 1e6\]"),
    ([{"name": "dec", "kind": "decoder", "mlp_ratio": -1}], r"model.stages.dec \(layer 0\): model.mlp_ratio: must be in"),
])
def test_inconsistent_pipelines_are_refused_naming_stage_and_key(stages, message):
    with pytest.raises(ConfigError, match=message):
        staged(stages)


def test_tools_that_assume_one_decoder_stack_refuse_a_pipeline():
    from foundry.errors import UserError
    from foundry.prune.structured import prune_structured
    from foundry.zoo.families import exportable_family
    model = staged()
    with pytest.raises(UserError, match="no Hugging Face family can express this model.*model.stages"):
        exportable_family(model.cfg)
    with pytest.raises(UserError, match="model.stages is not supported"):
        prune_structured(model, "heads", 0.5, torch.randint(0, 37, (1, 8)))


def test_gradient_checkpointing_runs_through_the_stages_with_the_same_gradients():
    grads = []
    for flag in (False, True):
        model = staged(gradient_checkpointing=flag)
        model.train()
        idx = torch.randint(0, 37, (2, 24), generator=torch.Generator().manual_seed(3))
        torch.manual_seed(4)  # the same posterior noise
        loss = model(idx).square().mean() + model.aux_loss()
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
