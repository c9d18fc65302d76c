"""HumanEval: the pass@k estimator, all 164 canonical solutions pass, wrong ones fail, --samples
scoring with several samples per task (every problem covered unless --allow-partial), and
generation + sandbox on a tiny model."""
import json
import os
from math import comb

import pytest

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.humaneval import STOP, HumanEval, build_program, pass_at_k
from foundry.cli import main
from foundry.errors import UserError


@pytest.mark.parametrize("n, c, k", [(10, 1, 1), (10, 3, 5), (200, 17, 10), (200, 0, 100), (5, 5, 1), (20, 15, 10)])
def test_pass_at_k_matches_the_binomial_formula(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_k_edges():
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


def test_every_canonical_solution_passes(shared_data):
    task = HumanEval(EvalOptions(data_dir=shared_data, timeout=20.0, workers=2))
    problems = task.problems()
    assert len(problems) == 164
    items = task.check([(p, p["canonical_solution"]) for p in problems])
    assert [(it["task_id"], it["status"], it["error"]) for it in items if not it["passed"]] == []


def test_wrong_solutions_fail(shared_data):
    task = HumanEval(EvalOptions(data_dir=shared_data, timeout=5.0))
    problems = task.problems()[:12]
    empty = task.check([(p, "    pass\n") for p in problems])
    swapped = task.check([(p, q["canonical_solution"]) for p, q in zip(problems, problems[1:] + problems[:1])])
    assert not any(it["passed"] for it in empty + swapped)
    assert {it["status"] for it in empty + swapped} == {"failed"}


def test_program_layout():
    problem = {"prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}
    assert build_program(problem, "    return 1\n").endswith("\ncheck(f)\n")
    assert "\ndef" in STOP and "\nclass" in STOP


def test_score_samples_with_several_per_task(data_env, tmp_path):
    samples = [{"task_id": "T/0", "completion": "    return a + b\n"},
               {"task_id": "T/0", "completion": "    return a - b\n"},
               {"task_id": "T/1", "completion": "    return -a\n"},
               {"task_id": "T/1", "completion": "    import os\n    os._exit(0)\n"}]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    result = HumanEval(EvalOptions(timeout=5.0)).score_samples(str(path))
    assert result["partial"] is False and result["problems_total"] == 2
    assert [it["passed"] for it in result["items"]] == [True, False, True, False]
    assert result["pass@1"] == pytest.approx(0.5) and result["score"] == pytest.approx(0.5)
    assert "pass@10" not in result and result["samples_per_problem"] == 2
    assert result["statuses"] == {"passed": 2, "failed": 2}


def test_samples_must_cover_every_problem_unless_allowed(data_env, tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"task_id": "T/0", "completion": "    return a + b\\n"}\n')
    with pytest.raises(UserError, match=r"samples.jsonl: no sample for 1 of the 2 problems \(T/1\).*--allow-partial"):
        HumanEval(EvalOptions()).score_samples(str(path))
    result = HumanEval(EvalOptions(allow_partial=True, timeout=5.0)).score_samples(str(path))
    assert result["partial"] is True and result["problems"] == 1 and result["problems_total"] == 2
    assert main(["eval", "--samples", str(path), "--tasks", "humaneval"]) == 2
    assert main(["eval", "--samples", str(path), "--tasks", "humaneval", "--allow-partial", "--json"]) == 0


def test_unknown_task_id_names_the_line(data_env, tmp_path):
    from foundry.errors import UserError

    path = tmp_path / "samples.jsonl"
    path.write_text('{"task_id": "T/0", "completion": ""}\n{"task_id": "X/9", "completion": ""}\n')
    with pytest.raises(UserError, match=r"samples.jsonl:2: unknown task_id 'X/9'"):
        HumanEval(EvalOptions()).score_samples(str(path))


def test_generate_and_check_with_a_tiny_model(data_env, tiny_lm):
    result = HumanEval(EvalOptions(timeout=5.0, max_new_tokens=8)).evaluate(tiny_lm)
    assert result["n"] == 2 and result["score"] == 0.0  # random weights write no working code
    for item, problem_id in zip(result["items"], ("T/0", "T/1")):
        assert item["task_id"] == problem_id and item["status"] in ("failed", "timeout")
        assert not any(stop in item["completion"] for stop in STOP)
    assert os.environ["FOUNDRY_DATA"] == data_env
