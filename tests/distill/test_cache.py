"""Offline teacher logits: the cache round trip against the live teacher, training from it equals
online top-k distillation, a different stream is refused, and `foundry distill cache` itself."""
import json
import os

import numpy as np
import pytest
import torch

from foundry.cli import main
from foundry.data import get_batch, load_dataset
from foundry.distill.cache import TeacherCache, write_cache
from foundry.distill.teacher import Teacher, top_k
from foundry.errors import UserError
from foundry.training.loop import train
from tests.distill.fixtures import shakespeare_config, trained_run
from tests.distill.test_distiller import data_dir, teacher  # noqa: F401  (module fixtures)


def student(data_dir, teacher, steps=5, **distill):
    return shakespeare_config(data_dir, steps, distill={"teacher": teacher, **distill},
                              sections={"model": {"n_layer": 1}})


def check_against_live(logits, index, logp, tail, k):
    """The stored entries are the live teacher's: its top k (near-ties in either order), their
    log-probabilities (fp16) and the exact rest mass."""
    live = torch.log_softmax(logits, dim=-1)  # (B, T, V)
    ref_index = top_k(logits, k)[0]
    assert (index == ref_index).float().mean() > 0.98  # batching moves near-ties only
    assert torch.allclose(live.gather(-1, index), logp, atol=3e-3, rtol=2e-3)
    rest = live.scatter(-1, index, float("-inf")).logsumexp(dim=-1)
    assert torch.allclose(tail, rest, atol=3e-3)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, data_dir, teacher):
    out = str(tmp_path_factory.mktemp("cache") / "k8")
    write_cache(teacher, student(data_dir, teacher), out, top_k=8, seeds=[1, 2], log=lambda *a: None)
    return out


def test_the_cache_holds_the_teachers_top_k_for_every_window_of_the_stream(data_dir, teacher, cache):
    cfg = student(data_dir, teacher, top_k=8)
    dataset = load_dataset(cfg.data)
    manifest = json.load(open(os.path.join(cache, "manifest.json")))
    assert manifest["top_k"] == 8 and manifest["seeds"] == [1, 2] and manifest["micro_batches"] == 5
    assert manifest["windows"] == len(np.load(os.path.join(cache, "keys.npy")))
    stored = TeacherCache(cache, cfg, dataset)
    live = Teacher(teacher, cfg)
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        for _ in range(5):
            x, _ = get_batch(dataset.train, 4, 16, rng)
            index, logp, tail = stored.lookup(x)
            check_against_live(live(x), index, logp, tail, 8)


def test_a_smaller_top_k_moves_the_rest_into_the_missing_mass(data_dir, teacher, cache):
    cfg = student(data_dir, teacher, top_k=3)
    dataset = load_dataset(cfg.data)
    x, _ = get_batch(dataset.train, 4, 16, np.random.default_rng(1))
    index, logp, tail = TeacherCache(cache, cfg, dataset).lookup(x)
    assert index.shape[-1] == logp.shape[-1] == 3
    check_against_live(Teacher(teacher, cfg)(x), index, logp, tail, 3)


def test_training_from_the_cache_matches_online_top_k_distillation(tmp_path, data_dir, teacher, cache):
    online = train(student(data_dir, teacher, top_k=8), tmp_path / "online", log=lambda *a: None)
    cached_cfg = student(data_dir, teacher, top_k=8)
    cached_cfg.train.distill.teacher, cached_cfg.train.distill.cache = "", cache
    cached = train(cached_cfg, tmp_path / "cached", log=lambda *a: None)
    lines = [[json.loads(line) for line in open(tmp_path / name / "metrics.jsonl") if '"loss"' in line]
             for name in ("online", "cached")]
    for a, b in zip(*lines):
        assert a["distill_hard"] == pytest.approx(b["distill_hard"], rel=1e-3)
        assert a["distill_soft"] == pytest.approx(b["distill_soft"], rel=2e-2, abs=1e-5)
    assert cached["val_loss"] == pytest.approx(online["val_loss"], rel=1e-3)


def test_a_different_stream_or_top_k_is_refused_with_the_reason(tmp_path, data_dir, teacher, cache):
    dataset = load_dataset(student(data_dir, teacher).data)
    cases = [({"train": {"batch_size": 8}}, "batch_size=4"), ({"train": {"seed": 3}}, r"train.seed in \[1, 2\]"),
             ({"budget": {"steps": 6}}, "holds 5 micro-batches"), ({"distill": {"top_k": 16}}, "top 8"),
             ({"distill": {"top_k": 0}}, "top 8")]
    for change, message in cases:
        cfg = student(data_dir, teacher, **change.get("distill", {}))
        for key, value in change.get("train", {}).items():
            setattr(cfg.train, key, value)
        cfg.budget.steps = change.get("budget", {}).get("steps", cfg.budget.steps)
        with pytest.raises(UserError, match=message):
            TeacherCache(cache, cfg, dataset)
    cfg = student(data_dir, teacher, top_k=8)
    stored = TeacherCache(cache, cfg, dataset)
    x, _ = get_batch(dataset.train, 4, 16, np.random.default_rng(99))
    with pytest.raises(UserError, match="not in the cache"):
        stored.lookup(x)
    with pytest.raises(UserError, match="not a teacher cache"):
        TeacherCache(str(tmp_path), cfg, dataset)


def test_foundry_distill_cache_cli(tmp_path, data_dir, teacher, capsys):
    cfg_path = tmp_path / "student.yaml"
    from foundry.config import save
    save(student(data_dir, teacher), cfg_path)
    out = tmp_path / "c"
    assert main(["distill", "cache", teacher, str(cfg_path), "budget.steps=2", "--top-k", "4",
                 "--out", str(out), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["top_k"] == 4 and manifest["micro_batches"] == 2 and os.path.isfile(out / "tail.npy")
    assert main(["distill", "cache", teacher, str(cfg_path), "--out", str(out)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    assert main(["distill", "cache", teacher, str(cfg_path), "--top-k", "0", "--out", str(tmp_path / "d")]) == 2
    assert not os.path.exists(tmp_path / "d")
    with pytest.raises(SystemExit) as help_exit:
        main(["distill", "cache", "--help"])
    assert help_exit.value.code == 0 and "--top-k" in capsys.readouterr().out
    assert main(["distill", "--help"]) == 0


def test_the_python_api_writes_the_same_cache(tmp_path, data_dir, teacher):
    import foundry.distill
    manifest = foundry.distill.write_cache(teacher, student(data_dir, teacher, steps=2), tmp_path / "c", top_k=4)
    assert manifest["windows"] == 8 and manifest["stream"]["batch_size"] == 4


def test_a_cache_of_a_trained_teacher_trains_a_student_under_a_seconds_budget_only_with_steps(tmp_path, data_dir):
    t = trained_run(tmp_path / "t", data_dir, steps=2)
    cfg = shakespeare_config(data_dir, 2)
    cfg.budget.steps, cfg.budget.seconds = 0, 5.0
    with pytest.raises(UserError, match="--steps"):
        write_cache(t, cfg, tmp_path / "c", top_k=4, log=lambda *a: None)
