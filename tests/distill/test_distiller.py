"""The distill objective with a live teacher: alpha 1 is plain CE, the teacher stays frozen and
graph-free, mismatched vocabularies are errors, bf16 teachers, feature distillation and resume."""
import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from foundry import catalog
from foundry.config import to_dict
from foundry.errors import UserError
from foundry.model.gpt import GPT
from foundry.training.loop import setup, train, train_step
from foundry.training.objectives import Distill, NextToken, build_objective
from tests.distill.fixtures import shakespeare_config, trained_run


@pytest.fixture(scope="module")
def data_dir():
    path = os.environ.get("FOUNDRY_DATA")
    assert path and os.path.isfile(os.path.join(path, "tinyshakespeare.txt")), "FOUNDRY_DATA must hold tinyshakespeare.txt"
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, data_dir):
    return trained_run(tmp_path_factory.mktemp("teacher") / "run", data_dir, steps=40,
                       sections={"model": {"n_layer": 3, "n_embd": 48}})


def student(data_dir, teacher, steps=4, **distill):
    return shakespeare_config(data_dir, steps, distill={"teacher": teacher, **distill},
                              sections={"model": {"n_layer": 1}})


def test_alpha_one_is_plain_cross_entropy(data_dir, teacher):
    cfg = student(data_dir, teacher, alpha=1.0)
    cfg.model.vocab_size = 65
    distill, plain = build_objective(cfg, "cpu"), NextToken(cfg, "cpu")
    assert isinstance(distill, Distill)
    model = GPT(cfg.model)
    distill.start(model)
    a = distill.micro_loss(model, np.random.default_rng(3))
    b = plain.micro_loss(model, np.random.default_rng(3))
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    assert distill.stats()["distill_soft"] > 0  # the soft term is computed, only weighted 0


def test_the_teacher_stays_frozen_without_a_graph(tmp_path, data_dir, teacher):
    session = setup(student(data_dir, teacher, alpha=0.2, temperature=2.0), tmp_path / "s", log=lambda *a: None)
    t = session.objective.distiller.teacher
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    for _ in range(3):
        train_step(session)
    on_disk = load_file(os.path.join(teacher, "checkpoint", "model.safetensors"))
    after = t.model.state_dict()
    for name, value in after.items():
        assert torch.equal(value, before[name]), name
    for name, value in on_disk.items():  # tied weights are stored once
        assert torch.equal(after[name], value), name
    assert all(not p.requires_grad and p.grad is None for p in t.model.parameters())
    assert not t.model.training
    out = t(torch.zeros(1, 8, dtype=torch.long))
    assert out.grad_fn is None and not out.requires_grad
    assert not any(p is q for p in t.model.parameters() for group in session.optimizer.param_groups
                   for q in group["params"])
    session.files.finish({"status": "done", "steps": 3}, 1.0)


def test_a_tokenizer_or_vocabulary_mismatch_is_a_clear_error(tmp_path, data_dir, teacher):
    byte = catalog.from_dict({**to_dict(student(data_dir, teacher)), "data": {
        "source": os.path.join(data_dir, "tinyshakespeare.txt"), "tokenizer": "byte"}})
    with pytest.raises(UserError, match="tokenizer.*differs from the student"):
        setup(byte, tmp_path / "a", log=lambda *a: None)
    padded = student(data_dir, teacher)
    padded.model.vocab_size = 80
    with pytest.raises(UserError, match="vocab_size 65 differs from the student's 80"):
        setup(padded, tmp_path / "b", log=lambda *a: None)
    longer = shakespeare_config(data_dir, 2, distill={"teacher": teacher}, sections={"model": {"block_size": 32}})
    with pytest.raises(UserError, match="block_size 16 is shorter"):
        setup(longer, tmp_path / "c", log=lambda *a: None)


def test_a_bf16_teacher_on_its_own_device_teaches(tmp_path, data_dir, teacher):
    cfg = student(data_dir, teacher, steps=3, teacher_device="cpu", teacher_dtype="bf16", top_k=8)
    summary = train(cfg, tmp_path / "s", log=lambda *a: None)
    assert summary["status"] == "done"
    session = setup(cfg, tmp_path / "t", log=lambda *a: None)
    t = session.objective.distiller.teacher
    assert {p.dtype for p in t.model.parameters()} == {torch.bfloat16} and str(t.device) == "cpu"
    assert t(torch.zeros(1, 4, dtype=torch.long)).dtype == torch.float32
    session.files.finish({"status": "done", "steps": 0}, 1.0)


def test_the_student_starts_where_an_undistilled_one_does(tmp_path, data_dir, teacher):
    """Loading the teacher draws no random numbers: distilled and scratch students share their init."""
    distilled = setup(student(data_dir, teacher), tmp_path / "a", log=lambda *a: None)
    scratch_cfg = shakespeare_config(data_dir, 4, sections={"model": {"n_layer": 1}})
    scratch = setup(scratch_cfg, tmp_path / "b", log=lambda *a: None)
    for (name, a), (_, b) in zip(distilled.model.state_dict().items(), scratch.model.state_dict().items()):
        assert torch.equal(a, b), name
    for s in (distilled, scratch):
        s.files.finish({"status": "done", "steps": 0}, 1.0)


@pytest.mark.parametrize("loss", ["mse", "cosine"])
def test_feature_distillation_trains_a_projection_and_resumes_it(tmp_path, data_dir, teacher, loss):
    cfg = student(data_dir, teacher, steps=6, features={"weight": 1.0, "pairs": [[0, -1]], "loss": loss})
    session = setup(cfg, tmp_path / "s", log=lambda *a: None)
    (projection,) = session.objective.parameters()
    assert projection.shape == (48, 32)  # student width 32 -> teacher width 48
    start = projection.detach().clone()
    train_step(session)
    assert not torch.equal(projection, start) and "distill_feature" in session.objective.stats()
    session.files.finish({"status": "done", "steps": 1}, 1.0)
    train(cfg, tmp_path / "r", stop_after_steps=3, log=lambda *a: None)
    resumed = setup(cfg, tmp_path / "r", resume=True, log=lambda *a: None)
    saved = torch.load(os.path.join(tmp_path, "r", "checkpoint", "state.pt"), weights_only=True)["objective"][0]
    assert torch.equal(resumed.objective.parameters()[0].detach(), saved) and resumed.step == 3
    resumed.files.finish({"status": "done", "steps": 3}, 1.0)


def test_bad_distill_settings_name_the_key(data_dir, teacher):
    base = to_dict(student(data_dir, teacher))
    cases = [({"loss": "mse"}, "train.distill.loss: unknown 'mse'"), ({"alpha": 1.5}, "alpha in"),
             ({"cache": "c"}, "not both"), ({"features": {"weight": 1.0}}, "features.pairs"),
             ({"features": {"weight": 1.0, "pairs": [[5, 0]]}}, "features.pairs"),
             ({"teacher_dtype": "fp16"}, "teacher_dtype: unknown")]
    for change, message in cases:
        data = {**base, "train": {**base["train"], "distill": {**base["train"]["distill"], **change}}}
        with pytest.raises(UserError, match=message):
            catalog.from_dict(data)
    dpo = {**base, "train": {**base["train"], "loss": "dpo"}, "data": {"source": "p.jsonl"}}
    with pytest.raises(UserError, match="next-token"):
        catalog.from_dict(dpo)


def test_packed_rows_reach_the_teacher_and_only_targets_carry_the_soft_loss(tmp_path, data_dir, teacher):
    text = open(os.path.join(data_dir, "tinyshakespeare.txt")).read()
    with open(tmp_path / "docs.jsonl", "w") as f:  # Shakespeare's lines as documents: the same characters
        f.writelines(json.dumps({"text": line}) + "\n" for line in text.split("\n") if line)
    data = to_dict(student(data_dir, teacher, alpha=0.0, temperature=2.0))
    data["train"]["batch_size"] = 16
    cfg = catalog.from_dict({**data, "data": {**data["data"], "source": str(tmp_path / "docs.jsonl"), "packing": "bin"}})
    cfg.model.vocab_size = 65
    objective = build_objective(cfg, "cpu")
    model = GPT(cfg.model)
    objective.start(model)
    x, y, doc_ids = objective.batch(np.random.default_rng(5))
    assert doc_ids is not None and (y < 0).any()  # rows of pieces: some positions have no target
    loss = objective.micro_loss(model, np.random.default_rng(5))
    with torch.no_grad():
        t = torch.log_softmax(objective.distiller.teacher.model(x, doc_ids=doc_ids).float() / 2.0, -1).flatten(0, 1)
        s = torch.log_softmax(model(x, doc_ids=doc_ids).float() / 2.0, -1).flatten(0, 1)
    kl = (t.exp() * (t - s)).sum(-1)  # (N,)
    kept = y.flatten() >= 0
    assert loss.item() == pytest.approx(4.0 * kl[kept].mean().item(), rel=1e-4)


def test_a_cache_refuses_packed_rows_and_curricula(data_dir, teacher):
    base = to_dict(student(data_dir, teacher))
    base["train"]["distill"] = {"cache": "caches/t"}
    for data in ({"packing": "bin"}, {"curriculum": {"by": "length"}}):
        with pytest.raises(UserError, match="train.distill.cache: a cache holds the windows"):
            catalog.from_dict({**base, "data": {**base["data"], **data}})
