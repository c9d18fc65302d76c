"""`foundry eval` end to end (a saved Foundry checkpoint, a Hugging Face folder, --samples) and the
ranking helpers; bad input exits 2 with a message naming the file or value."""
import json

import pytest

from foundry.benchmarks.cli import eval_main
from foundry.benchmarks.results import format_table, parse_weights, rank_score
from foundry.cli import main as foundry_main
from foundry.errors import UserError


def test_checkpoint_json_and_out(foundry_checkpoint, tmp_path, capsys):
    out = tmp_path / "reports" / "eval.json"
    code = eval_main([foundry_checkpoint, "--tasks", "mqar,addition", "--limit", "3", "--json", "--out", str(out),
                      "--rank", "mqar=1,addition=3"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    assert set(report["tasks"]) == {"mqar", "addition"} and report["kind"] == "FoundryLM"
    mqar, addition = report["tasks"]["mqar"], report["tasks"]["addition"]
    assert len(mqar["items"]) == 3 and len(addition["items"]) == 3
    assert mqar["centered"] == pytest.approx((mqar["score"] - 0.1) / 0.9)
    assert report["rank"]["score"] == pytest.approx((mqar["centered"] + 3 * addition["centered"]) / 4)


def test_checkpoint_default_task_is_bpb(foundry_checkpoint, capsys, tiny_text):
    code = eval_main([foundry_checkpoint, "--path", f"bpb={tiny_text}", "--limit", "2"])
    table = capsys.readouterr().out
    assert code == 0 and table.splitlines()[1].startswith("bpb") and "rank_score: -" in table


def test_hugging_face_folder_through_the_same_path(hf_folder, data_env, capsys):
    code = eval_main([hf_folder, "--tasks", "mmlu,gsm8k,preference", "--limit", "2", "--max-new-tokens", "4",
                      "--json", "--shots", "0"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["kind"] == "HuggingFaceLM" and report["block_size"] == 64
    assert [report["tasks"][t]["n"] for t in ("mmlu", "gsm8k", "preference")] == [2, 2, 2]
    # the scores are the model's own: each MMLU answer's log-probability recomputed with transformers
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from foundry.benchmarks.mmlu import LETTERS, format_question, header
    from tests.benchmarks.conftest import MMLU_ROWS
    model, tok = AutoModelForCausalLM.from_pretrained(hf_folder).eval(), AutoTokenizer.from_pretrained(hf_folder)
    mmlu = report["tasks"]["mmlu"]
    for item in mmlu["items"]:
        row = MMLU_ROWS[item["subject"]][item["index"]]
        question = {"question": row[0], "choices": row[1:5], "answer": row[5]}
        prompt = tok.encode(header(item["subject"]) + format_question(question, False))
        expected = []
        for letter in LETTERS:
            answer = tok.encode(f" {letter}")
            ids = (prompt + answer)[max(0, len(prompt) + len(answer) - 1 - 64):]  # the 64-token context keeps the end
            with torch.no_grad():
                logits = model(torch.tensor([ids[:-1]])).logits[0].float().log_softmax(-1)
            start = len(ids) - len(answer)
            expected.append(sum(logits[start - 1 + i, t].item() for i, t in enumerate(answer)))
        assert item["logprobs"] == pytest.approx(expected, abs=1e-3)
        assert item["pred"] == LETTERS[max(range(4), key=expected.__getitem__)]
    assert mmlu["micro_acc"] == sum(it["correct"] for it in mmlu["items"]) / 2


def test_samples_need_no_model(data_env, tmp_path, capsys):
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"task_id": "T/0", "completion": "    return a + b\\n"}\n'
                       '{"task_id": "T/1", "completion": "    return a\\n"}\n')
    assert foundry_main(["eval", "--samples", str(samples), "--tasks", "humaneval"]) == 0
    assert "humaneval  pass@1  2" in capsys.readouterr().out
    gsm = tmp_path / "g.jsonl"
    gsm.write_text('{"task_id": 0, "completion": "#### 42"}\n')
    assert foundry_main(["eval", "--samples", str(gsm), "--tasks", "gsm8k", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"]["gsm8k"]["score"] == 1.0


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "mqar"], "exactly one of TARGET"),
    (["--samples", "x.jsonl", "--tasks", "mmlu"], "name one task that scores samples"),
    (["CKPT", "--tasks", "nope"], "unknown task 'nope' (valid: bpb, gsm8k"),
    (["CKPT", "--tasks", "gsm8k", "--data", "/no/such/folder"], "data folder /no/such/folder: not a directory"),
    (["CKPT", "--tasks", "gsm8k", "--path", "gsm8k=/no/test.jsonl"], "gsm8k: file /no/test.jsonl not found"),
    (["CKPT", "--tasks", "mqar", "--rank", "mmlu=1"], "--rank: weights for tasks not run: mmlu"),
    (["CKPT", "--path", "gsm8k"], "expected TASK=PATH"),
])
def test_bad_input_exits_2(argv, message, foundry_checkpoint, capsys):
    argv = [foundry_checkpoint if a == "CKPT" else a for a in argv]
    assert foundry_main(["eval", *argv, "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_rank_score_and_weights():
    results = {"mmlu": {"rank_value": 0.2}, "gsm8k": {"rank_value": 0.5}, "bpb": {"rank_value": -1.5}}
    assert rank_score(results, {"mmlu": 1, "gsm8k": 3}) == pytest.approx((0.2 + 1.5) / 4)
    assert rank_score(results, {}) == -1.5  # empty = bpb
    assert parse_weights("mmlu=1, gsm8k=2.5,bpb") == {"mmlu": 1.0, "gsm8k": 2.5, "bpb": 1.0}
    with pytest.raises(UserError, match="sum to zero"):
        rank_score(results, {"mmlu": 1, "gsm8k": -1})
    with pytest.raises(UserError, match="not a number"):
        parse_weights("mmlu=x")


def test_table_lists_every_task():
    table = format_table({"mmlu": {"metric": "acc_macro", "n": 10, "score": 0.3, "chance": 0.25,
                                   "centered": 0.0667, "seconds": 1.0},
                          "bpb": {"metric": "bpb", "n": 16, "score": 2.1, "chance": None, "centered": None}})
    lines = table.splitlines()
    assert lines[0].split() == ["task", "metric", "n", "score", "chance", "centered", "seconds"]
    assert lines[1].split()[:5] == ["mmlu", "acc_macro", "10", "0.3000", "0.250"] and lines[2].split()[4] == "-"
