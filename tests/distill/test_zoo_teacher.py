"""Models imported by the zoo in distillation and pruning: an imported Llama teaches a smaller
student that shares its tokenizer, and a pruned imported model exports back to Hugging Face with
its zeros (the mask buffers stay Foundry's).

    python -m pytest tests/distill/test_zoo_teacher.py -q
"""
import glob
import json

import pytest
from safetensors.torch import load_file

import foundry.prune
from foundry import catalog
from foundry.config import to_dict
from foundry.training.loop import train
from foundry.weights.checkpoint import load_model
from foundry.zoo import import_folder
from tests.zoo.hf_models import TEXT, save_tiny


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    return import_folder(save_tiny(root / "hf", "llama"), str(root / "run"), log=lambda *a: None)["out"]


def test_an_imported_model_teaches_a_smaller_student(llama, tmp_path):
    (tmp_path / "text.txt").write_text(TEXT * 5)
    data = to_dict(load_model(llama)[2])
    data["name"] = "student"
    data["model"].update(n_layer=1, block_size=32)  # a new, smaller model: nothing loaded from the teacher
    data["train"].update(batch_size=4, warmup_steps=0, distill={"teacher": llama, "top_k": 8, "alpha": 0.3})
    data["data"].update(source=str(tmp_path / "text.txt"), tokenizer="hf", tokenizer_path=llama)
    data["budget"], data["eval"] = {"steps": 3}, {"interval": 1000, "bytes": 2048}
    summary = train(catalog.from_dict(data), tmp_path / "student", log=lambda *a: None)
    assert summary["status"] == "done" and summary["params"] < load_model(llama)[0].num_params()
    steps = [json.loads(line) for line in open(tmp_path / "student" / "metrics.jsonl") if '"distill_soft"' in line]
    assert len(steps) == 3 and all(s["distill_soft"] > 0 for s in steps)


def test_a_pruned_imported_model_exports_with_its_zeros(llama, tmp_path):
    from foundry.zoo.cli import zoo_main
    report = foundry.prune.prune(llama, str(tmp_path / "pruned"), method="magnitude", sparsity=0.5,
                                 evaluate=False, log=lambda *a: None)
    assert report["sparsity"] == 0.5
    assert zoo_main(["export", str(tmp_path / "pruned"), "--out", str(tmp_path / "hf")]) == 0
    (weights,) = glob.glob(str(tmp_path / "hf" / "*.safetensors"))
    tensors = load_file(weights)
    assert not any("mask" in name for name in tensors)
    q = tensors["model.layers.0.self_attn.q_proj.weight"]
    assert (q == 0).float().mean().item() == 0.5
