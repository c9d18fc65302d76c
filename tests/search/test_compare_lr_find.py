"""`foundry compare` and `foundry lr-find` on a tiny config with a tiny budget (real trainer)."""
import json
import struct
import zlib

import pytest

from foundry.catalog import load
from foundry.cli import main
from foundry.config import save
from foundry.search.lr_find import suggest
from foundry.search.plot import encode_png
from tests.conftest import tiny_overrides


def test_compare_two_configs_over_seeds(tmp_path, tiny_text, capsys):
    cfg = load("baselines/tiny.yaml", tiny_overrides(tiny_text, steps=4))
    save(cfg, tmp_path / "a.yaml")
    cfg.train.lr *= 3
    save(cfg, tmp_path / "b.yaml")
    argv = ["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--seeds", "2", "--jobs", "2",
            "--out", str(tmp_path / "cmp"), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == [cfg.train.seed, cfg.train.seed + 1]
    for side in "AB":
        assert report[side]["n"] == 2 and report[side]["ci"][0] <= report[side]["mean"] <= report[side]["ci"][1]
        assert report[side]["qpc"] is not None and report[side]["tokens_per_s"] > 0
    diff = report["B"]["mean"] - report["A"]["mean"]
    assert report["difference"]["b_minus_a"] == pytest.approx(diff)
    assert report["paired"]["ci"][0] <= report["paired"]["b_minus_a"] <= report["paired"]["ci"][1]
    assert main(argv[:-1]) == 0  # finished runs are reused: nothing trains, a table is printed
    out = capsys.readouterr().out
    assert "training" not in out and "B - A (paired by seed)" in out
    assert main(["compare", str(tmp_path / "a.yaml"), str(tmp_path / "missing.yaml")]) == 2


def test_lr_find_writes_curve_and_suggests(tmp_path, tiny_text, capsys):
    out = tmp_path / "lrf"
    argv = ["lr-find", "baselines/tiny.yaml", *tiny_overrides(tiny_text), "--steps", "30", "--max-lr", "10",
            "--out", str(out), "--json"]
    assert main(argv) == 0
    brief = json.loads(capsys.readouterr().out)
    curve = json.loads((out / "lr_find.json").read_text())
    assert len(curve["lrs"]) == len(curve["losses"]) >= 5
    assert curve["lrs"] == sorted(curve["lrs"]) and 1e-6 <= brief["suggested_lr"] < brief["min_loss_lr"]
    png = (out / "lr_find.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and struct.unpack(">II", png[16:24]) == (640, 400)
    assert main(["lr-find", "baselines/tiny.yaml", "--min-lr", "1", "--max-lr", "0.1", "--out", str(out)]) == 2


def test_suggestions_on_a_known_curve():
    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]  # loss falls fastest around 1e-4, lowest at 1e-3
    losses = [5 - 2 / (1 + 10 ** (-(i - 20) / 3)) + (0.002 * (i - 30) ** 2 if i > 30 else 0) for i in range(50)]
    s = suggest(lrs, losses)
    assert s["steepest_lr"] == pytest.approx(1e-4, rel=0.3)
    assert s["suggested_lr"] == pytest.approx(s["min_loss_lr"] / 10)


def test_png_encoder_round_trips():
    rows = [bytearray(b"".join(bytes([x, y, 7]) for x in range(4))) for y in range(3)]  # 4 x 3 RGB
    png = encode_png(rows, 4, 3)
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    assert zlib.decompress(idat) == b"".join(b"\x00" + bytes(r) for r in rows)
