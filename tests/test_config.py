"""foundry.config: round trip, overrides, hashing, and every kind of bad config."""
import pytest

from foundry import catalog, config
from foundry.config import ConfigError

BASELINES = ["baselines/tiny.yaml", "baselines/shakespeare_char.yaml"]


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
    ({"model": {"n_layer": 0}}, "model.n_layer: must be positive"),
    ({"budget": {"steps": 0}}, "budget: set exactly one"),
    ({"budget": {"steps": -5}}, "budget: set exactly one"),
    ({"budget": {"steps": 5, "tokens": 100}}, "budget: set exactly one"),
    ({"train": {"lr": 0}}, "train.lr: must be positive"),
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
