"""`foundry zoo list | import | export` from the command line, and what they refuse: pickles
without --allow-pickle, unsupported architectures and settings, models no family can express,
an existing output folder. A refusal exits 2 with one line and leaves no output folder.

    python -m pytest tests/zoo/test_cli.py -q
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from foundry import catalog
from foundry.cli import main
from foundry.data import build_tokenizer
from foundry.model.gpt import GPT
from foundry.weights.checkpoint import load_model
from tests.conftest import REPO
from tests.zoo.hf_models import TEXT, save_foundry_run


def foundry(*args):
    return subprocess.run([sys.executable, "-m", "foundry.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["list", "import", "export"])
def test_every_zoo_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main(["zoo", command, "--help"])
    assert done.value.code == 0 and "usage: foundry zoo" in capsys.readouterr().out


def test_import_then_sample_eval_and_export_from_the_command_line(hf_folders, tmp_path):
    run, out = tmp_path / "run", tmp_path / "hf"
    result = foundry("zoo", "import", hf_folders["gpt2"], "--out", run, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["family"] == "gpt2" and summary["tensors"] == 2 + 14 * 2 + 2  # wte, wpe; 14 a layer; ln_f (tied head not stored)
    result = foundry("sample", run, "--prompt", "The quick", "--tokens", "5", "--temperature", "0")
    assert result.returncode == 0 and result.stdout.startswith("The quick"), result.stderr
    text = tmp_path / "text.txt"
    text.write_text(TEXT * 3)
    result = foundry("eval", run, "--tasks", "bpb", "--path", f"bpb={text}", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tasks"]["bpb"]["score"] > 0
    result = foundry("zoo", "export", run, "--out", out, "--max-shard-size", "100KB")
    assert result.returncode == 0 and "exported gpt2" in result.stdout, result.stderr
    assert os.path.isfile(out / "model.safetensors.index.json")


def test_pickle_is_refused_unless_allowed_and_then_read_as_tensors_only(hf_folders, tmp_path, capsys):
    folder = tmp_path / "pickled"
    shutil.copytree(hf_folders["llama"], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    os.remove(folder / "model.safetensors")
    assert main(["zoo", "import", str(folder), "--out", str(tmp_path / "run")]) == 2
    assert "--allow-pickle" in capsys.readouterr().err and not os.path.exists(tmp_path / "run")
    assert main(["zoo", "import", str(folder), "--out", str(tmp_path / "run"), "--allow-pickle"]) == 0
    ours = load_model(tmp_path / "run")[0].state_dict()
    reference = load_model(import_safetensors(hf_folders["llama"], tmp_path / "ref"))[0].state_dict()
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def import_safetensors(folder, out):
    assert main(["zoo", "import", str(folder), "--out", str(out)]) == 0
    return out


def edited_config(source, tmp_path, **changes):
    folder = tmp_path / "edited"
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("family,changes,message", [
    ("llama", {"architectures": ["LlamaForSequenceClassification"]}, "is not supported; supported: LlamaForCausalLM (llama)"),
    ("llama", {"architectures": None, "model_type": "bert"}, "model_type 'bert'"),
    ("llama", {"hidden_act": "gelu"}, "hidden_act='gelu' is not supported for llama"),
    ("llama", {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}}, "rope type 'yarn' is not supported"),
    ("qwen2", {"use_sliding_window": True}, "use_sliding_window=True is not supported for qwen2"),
    ("mistral", {"head_dim": 8}, "head_dim=8 is not hidden_size/num_attention_heads=16"),
])
def test_unsupported_hf_configs_are_refused_with_the_reason(family, changes, message, hf_folders, tmp_path, capsys):
    folder = edited_config(hf_folders[family], tmp_path, **changes)
    assert main(["zoo", "import", str(folder), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("model,message", [
    ({"ffn": "moe"}, "llama: model.ffn='moe' (it has 'dense')"),
    ({"position": "alibi"}, "model.position='alibi'"),
    ({"attention": "mla"}, "model.attention='mla'"),
])
def test_models_without_a_hf_equivalent_are_refused(model, message, tmp_path, capsys):
    llama_like = {"n_layer": 1, "n_head": 2, "n_embd": 32, "vocab_size": 256, "activation": "swiglu"}
    cfg = catalog.from_dict({"model": {**llama_like, **model}, "budget": {"steps": 1}})
    run = save_foundry_run(tmp_path / "run", GPT(cfg.model), cfg, build_tokenizer("byte", ""))
    assert main(["zoo", "export", run, "--out", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert "no Hugging Face family can express this model" in err and message in err, err
    assert not os.path.exists(tmp_path / "hf")


def test_existing_output_and_bad_options_are_refused(hf_folders, imported, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["zoo", "import", hf_folders["qwen2"], "--out", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["zoo", "export", imported["qwen2"], "--out", str(tmp_path / "x"), "--family", "gpt2"]) == 2
    assert "gpt2 cannot express model.attention='gqa'" in capsys.readouterr().err
    assert main(["zoo", "export", imported["qwen2"], "--out", str(tmp_path / "x"), "--max-shard-size", "big"]) == 2
    assert "--max-shard-size" in capsys.readouterr().err
    assert main(["zoo", "import", str(tmp_path / "taken"), "--out", str(tmp_path / "y")]) == 2
    assert "not a Hugging Face model folder" in capsys.readouterr().err
    assert not any(p.name in ("x", "y") for p in tmp_path.iterdir())
