"""foundry.train: a run end to end, resume equivalence, divergence, budgets, the run folder."""
import json
import os

import pytest

from foundry import catalog, config
from foundry.training.loop import train
from foundry.training.optim import lr_at
from tests.conftest import REPO, tiny_overrides

BASE = os.path.join(REPO, "baselines", "tiny.yaml")


def tiny_cfg(source, *extra, steps=6):
    return catalog.load(BASE, tiny_overrides(source, steps) + list(extra))


def losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f) if "loss" in r]


def test_run_folder_and_summary(tiny_text, tmp_path, capsys):
    summary = train(tiny_cfg(tiny_text, "eval.interval=3"), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("summary.json", "config.yaml", "metrics.jsonl", "progress.json", "checkpoint/model.safetensors",
                 "checkpoint/state.pt", "checkpoint/tokenizer.json", "checkpoint/config.yaml"):
        assert (run / name).exists(), name
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/loss", "val/bpb"} <= set(tags) and "val/val_bpb" not in tags
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["status"] == "done" and on_disk["steps"] == 6
    assert on_disk["train_tokens"] == 6 * 4 * 32
    for key in ("val_loss", "val_bpb", "tokens_per_s", "mfu", "params", "flops_per_token", "peak_mem_mb",
                "wall_s", "config_hash"):
        assert on_disk[key] is not None, key
    assert on_disk == summary
    out = capsys.readouterr().out
    assert "\nstatus: done\n" in out and f"config_hash: {summary['config_hash']}" in out
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_loss" in line]
    assert [e["step"] for e in evals] == [3, 6]
    # byte tokenizer: bits per byte is the loss in bits
    assert summary["val_bpb"] == pytest.approx(summary["val_loss"] / 0.6931471805599453)


def test_same_seed_same_run_and_a_few_steps_learn(tiny_text, tmp_path):
    a = train(tiny_cfg(tiny_text, steps=30, ), tmp_path / "a")
    b = train(tiny_cfg(tiny_text, steps=30), tmp_path / "b")
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert a["val_loss"] == b["val_loss"]
    curve = [loss for _, loss in losses(tmp_path / "a")]
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 0.5


@pytest.mark.parametrize("extra", [[], ["train.ema=0.9", "train.grad_accum=2", "model.dropout=0.1"]])
def test_resume_continues_the_same_loss_curve(tiny_text, tmp_path, extra):
    cfg = tiny_cfg(tiny_text, "train.checkpoint_interval=4", *extra, steps=10)
    whole = train(cfg, tmp_path / "whole")
    cut = train(cfg, tmp_path / "cut", stop_after_steps=6)
    assert cut["status"] == "interrupted"
    # the interruption came after the step-4 checkpoint: steps 5-6 are redone on resume
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert resumed["status"] == "done" and resumed["steps"] == 10
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], abs=1e-6)


def test_divergence_stops_the_run(tiny_text, tmp_path):
    summary = train(tiny_cfg(tiny_text, "train.lr=50", "train.min_lr=0", "train.warmup_steps=0",
                             "train.grad_clip=0", steps=40), tmp_path / "run")
    assert summary["status"] == "diverged"
    assert summary["steps"] < 40
    assert json.loads((tmp_path / "run" / "progress.json").read_text())["status"] == "diverged"


def test_token_and_seconds_budgets(tiny_text, tmp_path):
    by_tokens = train(tiny_cfg(tiny_text, "budget.steps=0", "budget.tokens=1000"), tmp_path / "t")
    assert by_tokens["steps"] == 8  # ceil(1000 / (4 * 32))
    by_time = train(tiny_cfg(tiny_text, "budget.steps=0", "budget.seconds=1.5"), tmp_path / "s")
    assert by_time["status"] == "done" and by_time["steps"] > 0


def test_schedule_warms_up_then_decays_to_min_lr():
    cfg = catalog.from_dict({"train": {"lr": 1.0, "min_lr": 0.1, "warmup_steps": 10}, "budget": {"steps": 110}})
    assert lr_at(cfg, 0, 110) == pytest.approx(0.1)
    assert lr_at(cfg, 9, 110) == pytest.approx(1.0)
    assert lr_at(cfg, 10, 110) == pytest.approx(1.0)
    assert lr_at(cfg, 60, 110) == pytest.approx(0.55)
    assert lr_at(cfg, 110, 110) == pytest.approx(0.1)
    assert lr_at(cfg, 30, None, time_fraction=1.0) == pytest.approx(0.1)


def test_shakespeare_char_trains_on_real_data(shared_data, tmp_path):
    cfg = catalog.load(os.path.join(os.path.dirname(BASE), "shakespeare_char.yaml"),
                      ["budget.steps=3", "eval.bytes=256", "model.n_layer=1"])
    summary = train(cfg, tmp_path / "run")
    assert summary["status"] == "done"
    resolved = catalog.load(tmp_path / "run" / "config.yaml")
    assert resolved.model.vocab_size == 65


def test_lora_fine_tunes_a_checkpoint_and_loads_back(tiny_text, tmp_path):
    from safetensors.torch import load_file

    from foundry.weights.checkpoint import load_model
    train(tiny_cfg(tiny_text), tmp_path / "base")
    tuned = train(tiny_cfg(tiny_text, f"train.init_from={tmp_path / 'base'}", "train.lora_rank=4",
                           "train.lr=1e-2", "train.min_lr=1e-3"), tmp_path / "lora")
    assert tuned["status"] == "done"
    base = load_file(str(tmp_path / "base" / "checkpoint" / "model.safetensors"))
    lora = load_file(str(tmp_path / "lora" / "checkpoint" / "model.safetensors"))
    assert any("lora_B" in k for k in lora)
    # the base weights are frozen: every base matrix is unchanged, only adapters trained
    assert torch_equal(base["blocks.0.attn.q_proj.weight"], lora["blocks.0.attn.q_proj.base_layer.weight"])
    assert any(lora[k].abs().sum() > 0 for k in lora if "lora_B" in k)
    model, _, cfg = load_model(tmp_path / "lora")
    assert cfg.train.lora_rank == 4 and sum(1 for n, _ in model.named_parameters() if "lora_A" in n) > 0


def torch_equal(a, b):
    import torch
    return torch.equal(a, b)


def test_init_from_rejects_a_checkpoint_of_another_shape(tiny_text, tmp_path):
    from foundry.errors import UserError
    train(tiny_cfg(tiny_text), tmp_path / "base")
    with pytest.raises(UserError, match="train.init_from: .* does not fit this model"):
        train(tiny_cfg(tiny_text, "model.n_embd=64", f"train.init_from={tmp_path / 'base'}"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_dpo_trains_on_preference_pairs_against_the_starting_weights(tiny_text, tmp_path):
    train(tiny_cfg(tiny_text, steps=10), tmp_path / "base")
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"the {w} ", "chosen": "quick brown fox", "rejected": "lazy dog and cat"}
            for w in ("fox", "dog", "cat", "and", "over", "the", "lazy", "jumps", "brown", "quick")]
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    summary = train(tiny_cfg(str(pairs), "train.loss=dpo", f"train.init_from={tmp_path / 'base'}",
                             "train.lr=3e-3", "train.dpo_beta=0.5", "data.val_fraction=0.2", steps=15),
                    tmp_path / "dpo")
    assert summary["status"] == "done"
    assert summary["data"]["train_pairs"] == 8 and summary["data"]["val_pairs"] == 2
    evals = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()
             if "val_reward_accuracy" in line]
    # the held-out pairs share the preference, so the policy learns to prefer "chosen"
    assert evals[-1]["val_reward_accuracy"] == 1.0 and evals[-1]["val_reward_margin"] > 0
    assert summary["val_loss"] < 0.6931  # below log 2, where policy = reference
    steps = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert len(steps) == 15 and all({"dpo_reward_margin", "dpo_reward_accuracy"} <= set(r) for r in steps)
    assert steps[-1]["dpo_reward_margin"] > steps[0]["dpo_reward_margin"]  # the training reward, logged per step
    assert "train/dpo_reward_accuracy" in tensorboard_tags(tmp_path / "dpo")


def tensorboard_tags(run_dir) -> set:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_moe_aux_loss_and_expert_load_are_logged(tiny_text, tmp_path):
    summary = train(tiny_cfg(tiny_text, "model.ffn=moe", "model.n_experts=4", "model.top_k=1", "model.n_layer=2",
                             steps=6), tmp_path / "moe")
    assert summary["status"] == "done"
    steps = [json.loads(line) for line in (tmp_path / "moe" / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert len(steps) == 6
    for row in steps:
        for layer in (0, 1):
            loads = [row[f"layer_{layer}/moe_load_{e}"] for e in range(4)]
            assert sum(loads) == pytest.approx(1.0)  # each expert's share of the routed assignments
            assert {f"layer_{layer}/moe_balance", f"layer_{layer}/moe_z", f"layer_{layer}/moe_dropped"} <= set(row)
    tags = tensorboard_tags(tmp_path / "moe")
    assert {"train/layer_1/moe_load_3", "train/layer_0/moe_balance"} <= tags


def test_eval_tasks_after_training_give_a_rank_score(tiny_text, tmp_path):
    summary = train(tiny_cfg(tiny_text, "eval.tasks=[bpb, addition]", "eval.limit=5",
                             "eval.rank={bpb: 3, addition: 1}"), tmp_path / "run")
    tasks = summary["tasks"]
    assert set(tasks) == {"bpb", "addition"} and tasks["addition"]["n"] == 5
    expected = (3 * tasks["bpb"]["rank_value"] + tasks["addition"]["rank_value"]) / 4
    assert summary["rank_score"] == pytest.approx(expected)
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["rank_score"] == summary["rank_score"]


def test_eval_task_names_are_checked_at_load():
    with pytest.raises(config.ConfigError, match="eval.tasks: unknown 'mmlu_pro'"):
        catalog.from_dict({"eval": {"tasks": ["mmlu_pro"]}, "budget": {"steps": 1}})
    with pytest.raises(config.ConfigError, match="eval.rank: 'gsm8k' is not in eval.tasks"):
        catalog.from_dict({"eval": {"tasks": ["bpb"], "rank": {"gsm8k": 1}}, "budget": {"steps": 1}})


def test_bf16_on_cpu_trains_to_about_the_fp32_loss(tiny_text, tmp_path, capsys):
    fp32 = train(tiny_cfg(tiny_text, "train.dtype=fp32", steps=8), tmp_path / "fp32")
    bf16 = train(tiny_cfg(tiny_text, "train.dtype=bf16", steps=8), tmp_path / "bf16")
    assert "(bf16)" in capsys.readouterr().out  # the run header says what the dtype resolved to
    assert bf16["status"] == "done" and abs(bf16["val_loss"] - fp32["val_loss"]) < 0.05
    assert bf16["val_loss"] != fp32["val_loss"]  # the matmuls really ran in bf16


@pytest.mark.parametrize("keep", [True, False])
def test_cpu_training_keeps_freed_memory_unless_told_not_to(tiny_text, tmp_path, monkeypatch, keep):
    """The allocator setting itself is tested in tests/test_hardware.py; here: the trainer asks for
    it on a CPU, only when train.keep_freed_memory is on, and the config hash ignores the key."""
    from foundry import hardware
    calls = []
    monkeypatch.setattr(hardware, "keep_freed_memory", lambda: calls.append(True) or True)
    cfg = tiny_cfg(tiny_text, f"train.keep_freed_memory={str(keep).lower()}", steps=2)
    summary = train(cfg, tmp_path / "run")
    assert calls == [True] * keep and summary["status"] == "done"
    assert config.config_hash(cfg) == config.config_hash(tiny_cfg(tiny_text, steps=2))


def test_train_compile_compiles_the_model_in_place(tiny_text, tmp_path, monkeypatch):
    """torch.compile itself takes a minute or more with an empty inductor cache (README); the test
    checks the plumbing: the model is compiled in place (checkpoint names unchanged) and compile
    warm-up leaves tokens/s."""
    import torch
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    summary = train(tiny_cfg(tiny_text, "train.compile=true", steps=5), tmp_path / "run")
    assert compiled == ["GPT"] and summary["status"] == "done" and summary["tokens_per_s"] > 0
    from foundry import load
    model, _, _ = load(tmp_path / "run")
    assert "wte.weight" in model.state_dict()
