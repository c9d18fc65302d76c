"""`foundry genetics`: --help and --operators, bad recipes as one line naming the file and key
(exit 2, nothing written), a GA run and a `merge:` (CMA-ES) run end to end through the command
with --json, the live table and TensorBoard curves."""
import json
import os

import pytest

from foundry.cli import main
from foundry.genetics.operators import OPERATORS, SELECTIONS
from tests.genetics.ga_fixtures import ga_recipe, ga_setup, write_recipe


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return ga_setup(tmp_path_factory.mktemp("cli"))


def test_help_and_the_catalogue(capsys):
    with pytest.raises(SystemExit) as e:
        main(["genetics", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--out", "--backend", "--workers", "--json", "--per-trial", "resumes"))
    assert main(["genetics", "--operators"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in [*OPERATORS, *SELECTIONS, "val_bpb"])


BAD = [   # (change to the good recipe, text the one-line error must contain)
    ({"populaton": 4}, "ga.yaml: populaton: unknown key"),
    ({"population": 1}, "ga.yaml: population: expected an integer in [2, 1000000], got 1"),
    ({"elite": 4}, "ga.yaml: elite: expected an integer in [0, 3], got 4"),
    ({"operators": [{"name": "crossfade"}]}, "operators[0].name: 'crossfade' is not an operator (valid: slerp"),
    ({"operators": [{"name": "slerp", "rate": 1.5}]}, "operators[0].rate: expected a number in [0.0, 1.0], got 1.5"),
    ({"operators": [{"name": "slerp", "sigma": 0.1}]}, "operators[0].sigma: unknown parameter of slerp"),
    ({"operators": [{"name": "slerp", "rate": 0.7}, {"name": "uniform", "rate": 0.6}]}, "crossover rates add up to 1.3"),
    ({"operators": [{"name": "gaussian", "adapt": "fast"}]}, "operators[0].adapt: 'fast' is not one of none, one_fifth"),
    ({"operators": [{"name": "slerp", "t": [0.1, "x"]}]}, "operators[0].t"),
    ({"selection": {"name": "roulette"}}, "selection.name: 'roulette' is not a selection (valid: tournament"),
    ({"selection": {"name": "tournament", "k": 0}}, "selection.k: expected an integer in [1, 1000], got 0"),
    ({"fitness": {"name": "accuracy"}}, "fitness.name: 'accuracy' is not a fitness plugin"),
    ({"init": {"from": "x", "campaign": "y"}}, "init: give exactly one of `from`"),
    ({"init": {"from": "nowhere/run"}}, "init.from[0]: nowhere/run is not a Foundry checkpoint"),
    ({"init": {"campaign": "nowhere"}}, "init.campaign: nowhere: no such campaign folder"),
    ({"init": {"from": "x", "noise": -1}}, "init.noise: expected a number in [0.0, 10.0], got -1"),
    ({"merge": {"method": "linear"}}, "a `merge:` recipe has only the merge section"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_a_bad_recipe_is_one_line_and_writes_nothing(setup, tmp_path, change, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = {**ga_recipe(setup), **change}
    recipe = write_recipe(tmp_path, data)
    capsys.readouterr()
    assert main(["genetics", recipe, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not os.path.exists(tmp_path / "out")


def test_a_ga_run_end_to_end_with_json(setup, tmp_path, capsys):
    recipe = write_recipe(tmp_path, ga_recipe(setup, generations=2))
    assert main(["genetics", recipe, "--out", str(tmp_path / "out"), "--workers", "0", "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["mode"] == "ga" and len(summary["curve"]) == 2 and os.path.isdir(summary["export"])
    assert "best so far" in err and "diversity" in err            # the table's header and a row per generation
    assert [line.split()[0] for line in err.splitlines() if line.strip()[:1].isdigit()] == ["0", "1"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "out" / "tb"))
    events.Reload()
    assert {"genetics/best", "genetics/mean", "genetics/diversity"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("genetics/best")] == [0, 1]
    assert main(["genetics", recipe, "--out", str(tmp_path / "out"), "--workers", "0"]) == 0   # done: resumes, same
    assert json.load(open(tmp_path / "out" / "genetics_summary.json"))["best"] == summary["best"]


def test_a_merge_recipe_runs_cmaes_through_the_same_command(setup, tmp_path, capsys):
    runs = setup["runs"]
    merge = {"method": "linear", "models": [runs["a"], runs["b"]], "parameters": {"weight": {"layers": 1}},
             "population": 4, "generations": 2, "seed": 0,
             "fitness": {"name": "val_bpb", "source": setup["corpus"], "batches": 1}}
    recipe = write_recipe(tmp_path, {"merge": merge})
    assert main(["genetics", recipe, "--out", str(tmp_path / "out"), "--workers", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "merge" and len(summary["curve"]) == 2 and "heldout" in summary["best"]
    assert os.path.isdir(summary["export"]) and os.listdir(tmp_path / "out" / "tb")


def test_the_live_table_redraws_progress_in_place_on_a_terminal():
    import io

    from foundry.genetics.individual import Individual
    from foundry.genetics.store import Reporter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    table = Reporter(None, stream=screen)
    people = [Individual("a", 0, status="scored", fitness=1.0), Individual("b", 0, status="failed"), Individual("c", 0)]
    table.status(0, people)
    table({"generation": 0, "best": 1.0, "mean": 1.0, "best_so_far": 1.0, "diversity": 0.5, "sigma": 0.01, "failed": 1})
    text = screen.getvalue()
    assert "generation 0: 2/3 scored, 1 failed" in text
    assert "\r\x1b[2K   0" in text and text.endswith("1\n")        # the progress line is replaced by the row
    plain = io.StringIO()
    Reporter(None, stream=plain).status(0, people)
    assert "scored" not in plain.getvalue()                       # not a terminal: rows only
