"""foundry fuse / foundry fuse report from the command line, and the fused run through foundry eval
and foundry sample; bad input is one line and exit 2, writing nothing."""
import json
import os

import pytest
import yaml

from foundry.cli import main
from tests.fusion.helpers import corpora, make_expert, two_expert_recipe


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuse-cli")
    experts = {"gpt2": make_expert(root / "gpt2", "gpt2", seed=1), "llama": make_expert(root / "llama", "llama", seed=2)}
    recipe = two_expert_recipe(experts, "gpt2", corpora(root / "corpora"), "bottleneck", "token",
                               eval={"interval": 2, "bytes": 512})
    path = root / "fuse.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("argv", [["fuse", "--help"], ["fuse", "report", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0 and "usage: foundry fuse" in capsys.readouterr().out


def test_fuse_report_eval_and_sample(recipe_file, tmp_path, capsys):
    run = tmp_path / "fused"
    assert main(["fuse", str(recipe_file), "router.top_k=1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "layer 1: gpt2[1:2] | llama[1:2]  adapter bottleneck, router token" in out and "\nstatus: done\n" in out
    summary = json.loads((run / "summary.json").read_text())
    fusion = json.loads((run / "fusion.json").read_text())
    assert fusion["experts"]["llama"]["blocks"] == [[0], [1]] and fusion["peak_mb"]["cpu"] > 0
    assert fusion["trainable_params"] < fusion["params"]
    assert main(["fuse", "report", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"prose: val_bpb {summary['eval']['val_bpb/prose']:.4f}" in out
    png, report = run / "fusion_usage.png", json.loads((run / "fusion_usage.json").read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for source in ("prose", "code"):
        layers = report["usage"][source]
        assert len(layers) == 2 and all(sum(layer.values()) == pytest.approx(1.0) for layer in layers)
    assert main(["eval", str(run), "--tasks", "bpb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"]["bpb"]["score"] > 0
    assert main(["sample", str(run), "--prompt", "the king", "--tokens", "5", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("the king")
    # a second fuse into the same folder is refused without --resume
    assert main(["fuse", str(recipe_file), "--out", str(run)]) == 2


def test_bad_recipe_is_one_line_and_writes_nothing(recipe_file, tmp_path, capsys):
    run = tmp_path / "never"
    assert main(["fuse", str(recipe_file), "router.kind=hash", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "fusion.layers[0].router.kind: unknown 'hash'" in err and "\n" not in err
    assert not os.path.exists(run)
    assert main(["fuse", "report", str(tmp_path)]) == 2
