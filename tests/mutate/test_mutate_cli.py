"""`foundry mutate` / `python -m foundry.mutate`: writes with lineage, lists, refuses invalid results."""
import json
import subprocess
import sys

import yaml

from foundry.catalog import from_dict, load
from foundry.cli import main
from foundry.config import save
from foundry.mutate import MUTATIONS


def _baseline(tmp_path):
    path = tmp_path / "base.yaml"
    save(from_dict({"name": "tiny", "budget": {"tokens": 20000}}), path)
    return path


def test_writes_variant_with_lineage(tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["mutate", "lr", "x2", "--baseline", str(_baseline(tmp_path)), "--out", str(out)]) == 0
    cfg = load(out / "lr_x2.yaml")
    assert cfg.parent == "tiny" and cfg.mutations == ["lr:x2"] and cfg.train.lr == 2e-3
    assert "train.lr: 0.001 -> 0.002" in capsys.readouterr().out
    # stacking through the CLI: mutate the mutant
    assert main(["mutate", "depth", "plus1", "--baseline", str(out / "lr_x2.yaml"), "--out", str(out)]) == 0
    assert load(out / "depth_plus1.yaml").mutations == ["lr:x2", "depth:plus1"]
    assert [p.name for p in out.iterdir()] and not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_list_json_has_every_type(capsys):
    assert main(["mutate", "--list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["type"]: tuple(e["variants"]) for e in entries} == {t: v for t, (_, v) in MUTATIONS.items()}


def test_invalid_result_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "exp"
    code = main(["mutate", "lora_alpha", "32", "--baseline", str(_baseline(tmp_path)), "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "lora_rank is 0" in capsys.readouterr().err
    assert main(["mutate", "attention", "bogus", "--baseline", str(_baseline(tmp_path)), "--out", str(out)]) == 2
    assert main(["mutate", "lr", "x2", "--baseline", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2
    assert not out.exists()


def test_python_dash_m_entry_point(tmp_path):
    out = tmp_path / "exp"
    run = subprocess.run([sys.executable, "-m", "foundry.mutate", "norm", "layernorm", "--baseline",
                          str(_baseline(tmp_path)), "--out", str(out), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["changes"] == {"model.norm": ["rmsnorm", "layernorm"]}
    assert yaml.safe_load((out / "norm_layernorm.yaml").read_text())["mutations"] == ["norm:layernorm"]
    bad = subprocess.run([sys.executable, "-m", "foundry.mutate", "norm", "rmsnorm", "--baseline",
                          str(_baseline(tmp_path)), "--out", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "changes nothing" in bad.stderr
