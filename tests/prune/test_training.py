"""Pruned models in training: `foundry prune` end to end, sparsity exactly at the target after
fine-tuning steps (init_from a pruned run, train.prune, EMA, resume), after merging LoRA adapters,
and the prune mutation trained as the supervisor would train it."""
import json
import os

import pytest
import torch

import foundry
from foundry.cli import main
from foundry.errors import UserError
from foundry.mutate import apply
from foundry.prune.select import nm_violations
from foundry.training.loop import train
from foundry.weights.lora import merge_lora
from foundry.weights.masks import mask_of, masked_modules, sparsity
from tests.distill.fixtures import shakespeare_config, trained_run
from tests.distill.test_distiller import data_dir  # noqa: F401  (module fixture)


@pytest.fixture(scope="module")
def base(tmp_path_factory, data_dir):
    return trained_run(tmp_path_factory.mktemp("base") / "run", data_dir, steps=30)


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, base):
    out = str(tmp_path_factory.mktemp("pruned") / "wanda50")
    assert main(["prune", base, "--method", "wanda", "--sparsity", "0.5", "--calibration", "8", "--out", out]) == 0
    return out


def exact(model, target: float) -> None:
    """Every masked weight is zero and the masks remove exactly `target` of each layer."""
    assert masked_modules(model)
    for name, module in masked_modules(model):
        mask = mask_of(module)
        assert (module.weight[~mask] == 0).all(), name
        assert 1 - mask.float().mean().item() == pytest.approx(target, abs=1e-6), name


def test_foundry_prune_writes_a_loadable_run_with_its_report(base, pruned, tmp_path, capsys):
    report = json.load(open(os.path.join(pruned, "prune.json")))
    assert report["sparsity"] == pytest.approx(0.5) and report["method"] == "wanda" and report["scope"] == "row"
    assert set(report["before"]) == set(report["after"]) == {"val_loss", "val_bpb"}
    model, _, cfg = foundry.load(pruned)
    exact(model, 0.5)
    assert cfg.parent == "tiny_char" and cfg.train.prune.method == "" and cfg.train.init_from == ""
    out = tmp_path / "two_four"
    assert main(["prune", base, "--method", "magnitude", "--pattern", "2:4", "--no-eval", "--json", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["pattern"] == "2:4"
    model, _, _ = foundry.load(out)
    assert all(nm_violations(m.weight, 2, 4) == 0 for _, m in masked_modules(model))
    out = tmp_path / "heads"
    assert main(["prune", base, "--structured", "heads", "--sparsity", "0.5", "--out", str(out)]) == 0
    small, _, small_cfg = foundry.load(out)
    assert small_cfg.model.n_head == 2 and small.num_params() < foundry.load(base)[0].num_params()
    capsys.readouterr()
    for bad in (["--method", "wanda", "--structured", "heads"], [], ["--method", "wanda", "--pattern", "2:4", "--sparsity", "0.5"],
                ["--method", "wanda", "--calibration", "0"]):
        assert main(["prune", base, *bad, "--out", str(tmp_path / "bad")]) == 2
        assert not os.path.exists(tmp_path / "bad")
    assert main(["prune", base, "--method", "magnitude", "--out", str(out)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as help_exit:
        main(["prune", "--help"])
    assert help_exit.value.code == 0


def test_fine_tuning_a_pruned_run_keeps_the_sparsity_exact(tmp_path, data_dir, pruned):
    cfg = shakespeare_config(data_dir, 8, init_from=pruned, ema=0.9, lr=1e-2)
    train(cfg, tmp_path / "ft", stop_after_steps=5, log=lambda *a: None)
    summary = train(cfg, tmp_path / "ft", resume=True, log=lambda *a: None)  # resumes with its masks
    assert summary["status"] == "done" and summary["steps"] == 8
    tuned = foundry.load(tmp_path / "ft")[0]  # the EMA weights
    exact(tuned, 0.5)
    from safetensors.torch import load_file
    raw = load_file(os.path.join(tmp_path, "ft", "checkpoint", "model.safetensors"))
    start = load_file(os.path.join(pruned, "checkpoint", "model.safetensors"))
    for name in raw:
        if name.endswith(".weight_mask"):
            weight = raw[name[: -len("_mask")]]
            assert torch.equal(raw[name], start[name]) and (weight[~raw[name]] == 0).all()
            assert not torch.equal(weight, start[name[: -len("_mask")]])  # it did train


def test_train_prune_prunes_the_starting_weights_then_fine_tunes(tmp_path, data_dir, base):
    cfg = shakespeare_config(data_dir, 6, init_from=base, prune={"method": "magnitude", "sparsity": 0.25, "scope": "layer"})
    summary = train(cfg, tmp_path / "tp", log=lambda *a: None)
    assert summary["status"] == "done"
    exact(foundry.load(tmp_path / "tp")[0], 0.25)


def test_lora_on_a_pruned_model_trains_the_sparse_model_and_merges_exactly(tmp_path, data_dir, pruned):
    cfg = shakespeare_config(data_dir, 6, init_from=pruned, lora_rank=4, lr=3e-2)
    train(cfg, tmp_path / "lora", log=lambda *a: None)
    model = foundry.load(tmp_path / "lora")[0]
    x = torch.randint(0, 65, (2, 16))
    with_adapters = model(x)
    merged = merge_lora(model)
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    exact(merged, 0.5)
    assert torch.allclose(merged(x), with_adapters, atol=1e-5)
    base_weights = foundry.load(pruned)[0].state_dict()
    changed = [n for n, v in merged.state_dict().items() if n.endswith(".weight") and n in base_weights
               and not torch.equal(v, base_weights[n])]
    assert changed  # the adapters learned something, and it was merged in
    cfg.train.lora_dropout = 0.1
    with pytest.raises(UserError, match="lora_dropout"):
        train(cfg, tmp_path / "dropout", log=lambda *a: None)


def test_the_prune_mutation_trains_as_a_supervisor_trial(tmp_path, data_dir, base):
    parent = shakespeare_config(data_dir, 4, init_from=base)
    child = apply(parent, "prune", "wanda_2:4")
    assert child.train.prune.method == "wanda" and child.train.prune.pattern == "2:4"
    assert train(child, tmp_path / "trial", log=lambda *a: None)["status"] == "done"
    model = foundry.load(tmp_path / "trial")[0]
    assert sparsity(model)["sparsity"] == pytest.approx(0.5)
    assert all(nm_violations(m.weight, 2, 4) == 0 for _, m in masked_modules(model))
