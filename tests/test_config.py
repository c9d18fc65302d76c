"""foundry.config: round trip, overrides, hashing, and every kind of bad config."""
import pytest

from foundry import catalog, config
from foundry.config import ConfigError

BASELINES = ["baselines/tiny.yaml", "baselines/shakespeare_char.yaml", "baselines/nanogpt.yaml",
             "baselines/free_transformer.yaml"]


@pytest.mark.parametrize("path", BASELINES)
def test_every_shipped_baseline_loads_and_round_trips(path, tmp_path, monkeypatch, shared_data):
    from tests.conftest import REPO
    cfg = catalog.load(f"{REPO}/{path}")
    out = tmp_path / "copy.yaml"
    config.save(cfg, out)
    again = catalog.load(out)
    assert again == cfg
    assert config.config_hash(again) == config.config_hash(cfg)


def test_overrides_apply_with_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nbudget: {steps: 10}\n")
    cfg = catalog.load(path, ["model.n_layer=6", "train.lr=3e-4", "train.betas=[0.9, 0.99]",
                             "model.qk_norm=true", "eval.tasks=[bpb, mmlu]"])
    assert cfg.model.n_layer == 6 and cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.betas == [0.9, 0.99] and cfg.model.qk_norm is True
    assert cfg.eval.tasks == ["bpb", "mmlu"]


def test_hash_ignores_lineage_but_not_content():
    a = catalog.from_dict({"budget": {"steps": 5}})
    b = catalog.from_dict({"name": "other", "parent": "a", "mutations": ["lr:2x"], "budget": {"steps": 5}})
    c = catalog.from_dict({"budget": {"steps": 6}})
    assert config.config_hash(a) == config.config_hash(b) != config.config_hash(c)
    assert config.diff(a, c) == {"budget.steps": (5, 6)}


def test_derived_values():
    cfg = catalog.from_dict({"model": {"n_head": 4, "n_kv_head": 0, "block_size": 64},
                            "train": {"batch_size": 3, "grad_accum": 2}, "budget": {"tokens": 1000}})
    assert cfg.model.kv_heads == 4
    assert cfg.tokens_per_step == 384
    assert cfg.max_steps() == 3  # ceil(1000 / 384)
    assert catalog.from_dict({"budget": {"seconds": 5}}).max_steps() is None


BAD = [
    ({"modle": {}}, "modle: unknown key"),
    ({"model": {"n_layers": 2}}, "model.n_layers: unknown key"),
    ({"model": {"n_layer": "two"}}, "model.n_layer: expected int"),
    ({"model": {"n_layer": 2.5}}, "model.n_layer: expected int"),
    ({"model": {"qk_norm": "yes"}}, "model.qk_norm: expected bool"),
    ({"train": {"betas": 0.9}}, "train.betas: expected a list"),
    ({"train": {"betas": [0.9]}}, "train.betas"),
    ({"model": {"attention": "flash"}}, "model.attention: unknown 'flash' (valid: "),
    ({"model": {"norm": "batchnorm"}}, "model.norm: unknown 'batchnorm'"),
    ({"model": {"activation": "tanh"}}, "model.activation: unknown 'tanh'"),
    ({"model": {"position": "sinusoid"}}, "model.position: unknown 'sinusoid'"),
    ({"train": {"loss": "mse"}}, "train.loss: unknown 'mse'"),
    ({"data": {"tokenizer": "words"}}, "data.tokenizer: unknown 'words'"),
    ({"model": {"n_embd": 100, "n_head": 3}}, "model.n_embd: 100 is not divisible by model.n_head=3"),
    ({"model": {"n_head": 4, "n_kv_head": 3, "attention": "gqa"}}, "model.n_kv_head: model.n_head=4 is not divisible by 3"),
    ({"model": {"n_head": 4, "n_kv_head": 2, "attention": "mha"}}, "model.attention: mha uses n_kv_head = n_head"),
    ({"model": {"n_layer": 0}}, "model.n_layer: must be in [1, 1e6], got 0"),
    ({"budget": {"steps": 0}}, "budget: set exactly one"),
    ({"budget": {"steps": -5}}, "budget.steps: must be in [0, 1e12], got -5"),
    ({"budget": {"steps": 5, "tokens": 100}}, "budget: set exactly one"),
    ({"train": {"lr": 0}}, "train.lr: must be in (0, 1000], got 0"),
    ({"train": {"lr": 1e-3, "min_lr": 1e-2}}, "train.min_lr"),
    ({"model": {"dropout": 1.5}}, "model.dropout"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_configs_name_the_key(data, message):
    data.setdefault("budget", {"steps": 5})
    with pytest.raises(ConfigError) as err:
        catalog.from_dict(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        catalog.load(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: invalid YAML"):
        catalog.load(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("model: {n_layer: x}\nbudget: {steps: 1}\n")
    with pytest.raises(ConfigError, match="wrong.yaml: model.n_layer: expected int"):
        catalog.load(wrong)
    with pytest.raises(ConfigError, match="expected key=value"):
        catalog.load(wrong, ["model.n_layer"])


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    cfg = catalog.from_dict({"budget": {"steps": 5}})
    config.save(cfg, tmp_path / "a.yaml")
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]


def test_one_budget_override_replaces_the_file_budget(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("budget: {tokens: 500000}\n")
    cfg = catalog.load(path, ["budget.steps=30"])
    assert (cfg.budget.steps, cfg.budget.tokens, cfg.budget.seconds) == (30, 0, 0.0)
    assert catalog.load(path, ["budget.seconds=2.5"]).budget.tokens == 0
    both = tmp_path / "both.yaml"
    both.write_text("budget: {tokens: 500000, steps: 10}\n")
    with pytest.raises(ConfigError, match="both.yaml: budget: set exactly one"):
        catalog.load(both)


def test_a_section_of_the_wrong_type_is_an_error_not_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: []\nbudget: {steps: 1}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: model: expected a mapping, got \[\]"):
        catalog.load(path)


def test_layer_selectors():
    assert config.layer_selector("3", 6) == [3]
    assert config.layer_selector("-1", 6) == [5]
    assert config.layer_selector("1::2", 6) == [1, 3, 5]
    assert config.layer_selector("0:-1", 4) == [0, 1, 2]
    for bad, reason in (("6", "out of range"), ("2:2", "selects no layer"), ("1:2:3:4", "not a slice")):
        with pytest.raises(ValueError, match=reason):
            config.layer_selector(bad, 6)


def test_layer_config_applies_entries_in_file_order():
    cfg = catalog.from_dict({"model": {"n_layer": 4, "block_size": 32, "layers": {
        "0::2": {"attention": "sliding_window", "window": 8}, "2": {"window": 16}, "3": {"ffn": "moe"}}},
        "budget": {"steps": 1}})
    layers = [config.layer_config(cfg.model, i) for i in range(4)]
    assert [(m.attention, m.window, m.ffn) for m in layers] == [
        ("sliding_window", 8, "dense"), ("mha", 0, "dense"), ("sliding_window", 16, "dense"), ("mha", 0, "moe")]
    assert layers[1] is cfg.model  # a layer without entries is the model-wide config itself
    assert all(m.layers == {} for m in (layers[0], layers[2], layers[3]))


def test_layers_are_validated_per_layer_and_hashed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {n_layer: 2, layers: {1: {attention: sliding_window}}}\nbudget: {steps: 1}\n")
    with pytest.raises(ConfigError, match=r"model.layers \(layer 1\): model.attention: sliding_window needs "
                                          r"model.window > 0"):
        catalog.load(path)
    base = {"model": {"n_layer": 2}, "budget": {"steps": 1}}
    with pytest.raises(ConfigError, match="model.layers.1.n_embd: not a per-layer key"):
        catalog.from_dict({**base, "model": {"n_layer": 2, "layers": {1: {"n_embd": 64}}}})
    with pytest.raises(ConfigError, match="model.layers.5: layer 5 is out of range for n_layer=2"):
        catalog.from_dict({**base, "model": {"n_layer": 2, "layers": {5: {"qk_norm": True}}}})
    with pytest.raises(ConfigError, match="model.layers.1.window: expected int"):
        catalog.from_dict({**base, "model": {"n_layer": 2, "layers": {1: {"window": "wide"}}}})
    plain = catalog.from_dict(base)
    mixed = catalog.from_dict({**base, "model": {"n_layer": 2, "layers": {1: {"qk_norm": True}}}})
    assert config.config_hash(plain) != config.config_hash(mixed)
    assert config.diff(plain, mixed) == {"model.layers": ({}, {"1": {"qk_norm": True}})}
    path.write_text(config.dumps(mixed))
    assert catalog.load(path) == mixed


def test_hash_covers_only_values_that_differ_from_the_defaults():
    minimal = catalog.from_dict({"budget": {"steps": 5}})
    spelled_out = catalog.from_dict({**config.to_dict(config.Config()), "budget": {"steps": 5}})
    assert config.config_hash(minimal) == config.config_hash(spelled_out)


def test_a_curriculum_name_alone_is_shorthand_for_by():
    """`data.curriculum: none` (how run folders before the curriculum section wrote it) still loads."""
    from foundry.config import parse
    assert parse({"data": {"curriculum": "length"}}).data.curriculum.by == "length"
    assert parse({"data": {"curriculum": "none"}}).data.curriculum.start == 0.2
    with pytest.raises(ConfigError, match="data.curriculum: expected a mapping"):
        parse({"data": {"curriculum": 3}})
