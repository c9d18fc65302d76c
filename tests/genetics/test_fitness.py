"""Fitness plugins: every registered plugin on both splits, the splits' disjointness, and errors."""
import math
import os

import numpy as np
import pytest

import foundry
from foundry.benchmarks import TASKS
from foundry.errors import UserError
from foundry.evaluation import val_metrics
from foundry.genetics import fitness
from foundry.genetics.fitness import FITNESS, check, score, split_tokens
from tests.genetics.merge_fixtures import tiny_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory.mktemp("fitness-runs"))


@pytest.fixture(scope="module")
def loaded(runs):
    model, _, cfg = foundry.load(runs["a"])
    return model, cfg


def shakespeare(batches=1):
    return {"name": "val_bpb", "source": "$FOUNDRY_DATA/tinyshakespeare.txt", "batches": batches}


# one spec per registered plugin (the test below fails when a plugin is added without one)
SPECS = {
    "val_bpb": shakespeare(),
    "task": {"name": "task", "task": "addition", "items": 3, "shots": 0},
    "weighted": {"name": "weighted", "parts": [{**shakespeare(), "weight": 0.25, "label": "s"},
                                               {"name": "val_bpb", "source": "builtin", "batches": 1, "weight": 0.75}]},
}


def test_every_plugin_has_a_spec():
    assert set(SPECS) == set(FITNESS)


@pytest.mark.parametrize("name", sorted(FITNESS))
def test_plugin_scores_both_splits(name, loaded, shared_data):
    model, cfg = loaded
    check(SPECS[name])
    search = score(model, cfg, SPECS[name], "search")
    again = score(model, cfg, SPECS[name], "search")
    heldout = score(model, cfg, SPECS[name], "heldout")
    assert search == again                                   # deterministic
    for scores in (search, heldout):
        assert set(scores) >= {"fitness"} and all(isinstance(v, float) and math.isfinite(v) for v in scores.values())
    if name != "task":                                       # a random model answers no addition: 0 on both
        assert search["fitness"] != heldout["fitness"]       # another part of the data


def test_val_bpb_is_minus_bpb_on_each_half(loaded, shared_data):
    import dataclasses

    from foundry.data import load_dataset
    model, cfg = loaded
    data = dataclasses.replace(cfg.data, source=os.path.join(shared_data, "tinyshakespeare.txt"))
    dataset = load_dataset(data)
    fp32 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, dtype="fp32"))
    middle = len(dataset.val) // 2
    for split, tokens in (("search", dataset.val[:middle]), ("heldout", dataset.val[middle:])):
        scored = tokens[:2 * cfg.train.batch_size * cfg.model.block_size + 1]   # batches=2 of the half
        want = val_metrics(model, scored, fp32, dataset.val_bytes_per_token, "cpu")["val_bpb"]
        got = score(model, cfg, shakespeare(batches=2), split)
        assert got["val_bpb"] == pytest.approx(want, rel=1e-12) and got["fitness"] == -got["val_bpb"]


def test_val_bpb_halves_are_disjoint_and_cover_the_split():
    tokens = np.arange(1001)
    search, heldout = split_tokens(tokens, "search"), split_tokens(tokens, "heldout")
    assert not set(search.tolist()) & set(heldout.tolist())
    assert np.array_equal(np.concatenate([search, heldout]), tokens)


class _Counting:
    """A task whose item i is correct when i % 3 == 0 (and one with several queries per item)."""
    name, chance = "fake", 0.0

    def __init__(self, opts):
        self.opts = opts

    def evaluate(self, lm):
        from foundry.benchmarks.common import make_result
        items = [{"index": i, "correct": i % 3 == 0} for i in range(self.opts.limit)]
        return make_result(self.name, "acc", 0.0, 0.0, items)


def test_task_split_is_first_items_then_the_next(loaded, monkeypatch):
    model, cfg = loaded
    monkeypatch.setitem(TASKS, "fake", _Counting)
    spec = {"name": "task", "task": "fake", "items": 5}
    search, heldout = score(model, cfg, spec, "search"), score(model, cfg, spec, "heldout")
    assert search["fitness"] == 2 / 5          # items 0..4: 0 and 3 correct
    assert heldout["fitness"] == 2 / 5         # items 5..9: 6 and 9 correct
    spec["items"] = 4
    assert score(model, cfg, spec, "search")["fitness"] == 2 / 4     # 0, 3
    assert score(model, cfg, spec, "heldout")["fitness"] == 1 / 4    # 4..7: 6


def test_task_with_queries_is_a_micro_average(loaded, monkeypatch):
    class Queries(_Counting):
        name = "mqar"

        def evaluate(self, lm):
            from foundry.benchmarks.common import make_result
            items = [{"index": i, "queries": 4, "correct": i} for i in range(self.opts.limit)]
            return make_result(self.name, "query_acc", 0.0, 0.0, items)
    model, cfg = loaded
    monkeypatch.setitem(TASKS, "mqar", Queries)
    spec = {"name": "task", "task": "mqar", "items": 2}
    assert score(model, cfg, spec, "search")["fitness"] == (0 + 1) / 8
    assert score(model, cfg, spec, "heldout")["fitness"] == (2 + 3) / 8


def test_weighted_sums_its_parts(loaded, shared_data):
    model, cfg = loaded
    out = score(model, cfg, SPECS["weighted"], "heldout")
    assert out["fitness"] == pytest.approx(0.25 * out["s.fitness"] + 0.75 * out["parts[1].fitness"])
    assert out["s.val_bpb"] == score(model, cfg, shakespeare(), "heldout")["val_bpb"]


@pytest.mark.parametrize("spec, message", [
    (None, "expected a mapping"),
    ({"name": "nope"}, "'nope' is not a fitness plugin (valid: val_bpb, task, weighted)"),
    ({}, "fitness.name: missing (valid: val_bpb, task, weighted)"),
    ({"name": "val_bpb", "batch": 2}, "fitness.batch: unknown key"),
    ({"name": "val_bpb", "batches": 0}, "fitness.batches: expected a positive integer"),
    ({"name": "val_bpb", "dtype": "fp8"}, "fitness.dtype: 'fp8' is not one of"),
    ({"name": "val_bpb", "source": ""}, "fitness.source: expected a data source"),
    ({"name": "task"}, "fitness.task: missing"),
    ({"name": "task", "task": "nope"}, "fitness.task: 'nope' is not a foundry eval task"),
    ({"name": "task", "task": "bpb"}, "use the val_bpb fitness plugin"),
    ({"name": "task", "task": "mqar", "items": -1}, "fitness.items: expected a positive integer"),
    ({"name": "weighted", "parts": []}, "fitness.parts: expected a non-empty list"),
    ({"name": "weighted", "parts": [{"name": "val_bpb", "weight": "a"}]}, "fitness.parts[0].weight: expected a number"),
    ({"name": "weighted", "parts": [{"name": "weighted", "parts": [{"name": "val_bpb"}]}]}, "cannot nest"),
    ({"name": "weighted", "parts": [{"name": "x"}]}, "fitness.parts[0].name: 'x' is not a fitness plugin"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(UserError, match=None) as e:
        check(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_split_and_bad_plugin_output(loaded, monkeypatch):
    model, cfg = loaded
    with pytest.raises(UserError, match="fitness split 'train'"):
        score(model, cfg, {"name": "val_bpb"}, "train")
    empty = fitness.Plugin(lambda *a: {"x": 1.0}, lambda s, w: None, "returns no fitness")
    monkeypatch.setitem(FITNESS, "empty", empty)
    with pytest.raises(UserError, match="returned no 'fitness'"):
        score(model, cfg, {"name": "empty"}, "search")


def test_val_bpb_refuses_a_foreign_source_for_corpus_built_vocabularies(loaded):
    import dataclasses
    model, cfg = loaded
    char_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, tokenizer="char", source="a.txt"))
    with pytest.raises(UserError, match="a char vocabulary is built from its own corpus"):
        score(model, char_cfg, {"name": "val_bpb", "source": "builtin"}, "search")


def test_missing_source_names_it(loaded):
    model, cfg = loaded
    with pytest.raises(UserError, match="nowhere.txt"):
        score(model, cfg, {"name": "val_bpb", "source": "/nowhere.txt"}, "search")
