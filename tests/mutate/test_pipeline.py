"""The architecture-DSL mutations (foundry/mutate/pipeline.py) change what they name and nothing
else: the right layer's mixer, the router where it is set, one stage's depth with model.n_layer
following, the latent sampler on and off again, d_state and the window where they are read."""
import pytest

from foundry.catalog import from_dict
from foundry.config import layer_config
from foundry.errors import UserError
from foundry.mutate import apply, propose
from tests.mutate.test_mutations import BASE, PIPELINE_MODEL


def pipeline():
    return from_dict({**BASE, "name": "ft", "model": PIPELINE_MODEL})


def plain(**model):
    return from_dict({**BASE, "model": {"n_layer": 3, **model}})


def mixers(cfg):
    return [layer_config(cfg.model, i).attention for i in range(cfg.model.n_layer)]


def test_layer_mixer_swaps_only_the_first_or_last_decoder_layer():
    assert mixers(apply(plain(), "layer_mixer", "ssm_last")) == ["mha", "mha", "ssm"]
    ft = pipeline()
    assert mixers(ft) == ["mha", "routed", "routed", "routed", "sliding_window", "sliding_window"]
    assert mixers(apply(ft, "layer_mixer", "retention_first")) == ["mha", "retention", "routed", "routed",
                                                                   "sliding_window", "sliding_window"]
    assert mixers(apply(ft, "layer_mixer", "mha_last"))[-1] == "mha"
    with pytest.raises(UserError, match="already mixes with routed"):
        apply(ft, "layer_mixer", "routed_first")


def test_router_changes_the_setting_where_the_routed_layers_read_it():
    ft = pipeline()
    child = apply(ft, "router", "temperature_x2")
    assert [layer_config(child.model, i).router_temperature for i in (1, 2, 3)] == [1.4] * 3
    assert child.model.router_temperature == ft.model.router_temperature  # not read by any routed layer
    top1 = apply(plain(attention="routed"), "router", "top_k_1")
    assert top1.model.router_top_k == 1
    with pytest.raises(UserError, match="no layer uses the routed mixer"):
        apply(plain(), "router", "top_k_1")


def test_stage_depth_moves_one_stage_and_n_layer_follows():
    child = apply(pipeline(), "stage_depth", "minus1_last")
    assert [s.get("n_layer") for s in child.model.stages] == [1, None, 3, 1] and child.model.n_layer == 5
    assert apply(pipeline(), "stage_depth", "plus1_first").model.n_layer == 7
    with pytest.raises(UserError, match="mutation depth"):
        apply(plain(), "stage_depth", "plus1_first")
    with pytest.raises(UserError, match="stage_depth"):
        apply(pipeline(), "depth", "plus1")


def test_latent_on_makes_a_pipeline_and_off_removes_encoder_and_latent():
    on = apply(plain(layers={"-1": {"qk_norm": True}}), "latent", "on")
    assert [s["kind"] for s in on.model.stages] == ["encoder", "latent", "decoder"] and on.model.n_layer == 4
    assert [layer_config(on.model, i).qk_norm for i in range(4)] == [False, False, False, True]  # same layer
    off = apply(pipeline(), "latent", "off")
    assert [s["name"] for s in off.model.stages] == ["decoder_lower", "decoder_upper"] and off.model.n_layer == 5


def test_d_state_and_window_scale_where_they_are_read():
    ft = pipeline()
    assert apply(ft, "d_state", "x2").model.d_state == 2 * ft.model.d_state   # the routed layers' ssm
    windows = [layer_config(apply(ft, "window", "x0.5").model, i).window for i in (4, 5)]
    assert windows == [64, 64]
    assert layer_config(apply(ft, "window", "x2").model, 5).window == ft.model.block_size  # capped


def test_the_proposer_draws_the_pipeline_mutations():
    import random
    labels = {label.split(":")[0] for _, label in propose(pipeline(), 40, random.Random(0))}
    assert {"layer_mixer", "router", "stage_depth", "latent", "d_state", "window"} <= labels


def test_a_model_wide_change_that_every_stage_overrides_is_a_no_op():
    from foundry.mutate import NoOpMutation
    with pytest.raises(NoOpMutation, match="changes nothing"):
        apply(pipeline(), "attention", "mla")   # every stage sets its own mixer
    assert apply(pipeline(), "norm", "layernorm").model.norm == "layernorm"   # read by every layer
