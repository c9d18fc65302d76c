"""Curricula change what training sees: python -m pytest tests/data/test_curriculum.py"""
import json

import numpy as np
import pytest

from foundry import catalog
from foundry.config import CurriculumConfig
from foundry.data.curriculum import SCHEDULES, available_share
from foundry.mutate import apply
from foundry.training.objectives import NextToken


@pytest.fixture
def mixed_lengths(tmp_path):
    """JSONL documents of very different lengths, each made of one repeated letter that names its length class."""
    rng = np.random.default_rng(0)
    lengths = rng.permutation([20] * 40 + [400] * 40 + [1000] * 40)
    letter = {20: "s", 400: "m", 1000: "L"}
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": letter[int(n)] * int(n)}) for n in lengths) + "\n")
    return str(path)


def _config(source, steps=100, packing="random"):
    return catalog.from_dict({"data": {"source": source, "val_fraction": 0.05, "packing": packing},
                              "model": {"block_size": 16, "n_layer": 1, "n_embd": 32, "n_head": 2},
                              "train": {"batch_size": 64}, "budget": {"steps": steps}})


def _letters(objective, progress, draws=8):
    """Share of each document class among the tokens of `draws` batches drawn at `progress`."""
    objective.progress = progress
    rng = np.random.default_rng(1)
    text = "".join(bytes(objective.batch(rng)[0].flatten().tolist()).decode() for _ in range(draws))
    return {c: text.count(c) / len(text) for c in "smL"}


@pytest.mark.parametrize("packing", ["random", "bin"])
def test_length_curriculum_makes_early_batches_short_and_late_ones_uniform(mixed_lengths, packing):
    plain = NextToken(_config(mixed_lengths, packing=packing), "cpu")
    mutated = apply(plain.cfg, "curriculum", "length")          # the mutation the supervisor draws
    curriculum = NextToken(mutated, "cpu")
    early, late, uniform = _letters(curriculum, 0.0), _letters(curriculum, 1.0), _letters(plain, 0.0)
    # at step 0 only the easiest 20% of the ordered stream is sampled: short and medium documents
    # (30% of the characters), never the long ones
    assert early["L"] == 0.0 and early["s"] > 0.02
    assert uniform["L"] > 0.6                                   # without a curriculum: mostly long text
    assert abs(late["L"] - uniform["L"]) < 0.1                  # after the ramp: uniform again
    assert curriculum.data.meta["curriculum"] == "length"


def test_schedules_rise_from_start_to_everything_at_the_ramp():
    for name in SCHEDULES:
        cfg = CurriculumConfig(by="length", schedule=name, start=0.25, ramp=0.5)
        shares = [available_share(cfg, p) for p in np.linspace(0, 1, 21)]
        assert shares[0] == pytest.approx(0.25) and shares[10] == 1.0 and shares[-1] == 1.0
        assert all(a <= b for a, b in zip(shares, shares[1:])), name
    assert available_share(CurriculumConfig(by="none"), 0.0) == 1.0
    assert available_share(CurriculumConfig(by="length", schedule="linear", start=0.2, ramp=0.5), 0.25) == \
        pytest.approx(0.6)


def test_the_training_loop_passes_progress_to_the_objective(mixed_lengths, tmp_path):
    from foundry.training.loop import setup, train_step
    cfg = apply(_config(mixed_lengths, steps=4), "curriculum", "length_linear")
    session = setup(cfg, tmp_path / "run", log=lambda *_: None)
    seen = []
    for _ in range(3):
        train_step(session)
        seen.append(session.objective.progress)
    assert seen == [0.0, 0.25, 0.5]


@pytest.mark.parametrize("settings,message", [
    ({"by": "hardness"}, "valid: length, none"),
    ({"by": "length", "schedule": "cosine"}, "valid: linear, sqrt, step"),
    ({"by": "length", "start": 0.0}, "start and ramp"),
    ({"by": "length", "reference": "runs/x"}, "reference is only used"),
])
def test_bad_curriculum_settings_name_the_key(settings, message):
    with pytest.raises(catalog.ConfigError, match=f"data.curriculum.*{message}"):
        catalog.from_dict({"data": {"curriculum": settings}, "budget": {"steps": 1}})
