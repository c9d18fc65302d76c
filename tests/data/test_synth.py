"""Synthesis: batched sampling, ROUGE-L, self-instruct's filters, critique -> revision pairs, the CLI.

    python -m pytest tests/data/test_synth.py -q
"""
import json

import pytest
import torch

import foundry
from foundry import catalog
from foundry.data.constitution import BUILTIN_CONSTITUTION, critique_revision, load_constitution
from foundry.data.generation import sample
from foundry.data.preference import load_preference_pairs
from foundry.data.synth import response_prompt, rouge_l, self_instruct
from foundry.data.tokenizer import ByteTokenizer
from foundry.model.gpt import GPT
from tests.conftest import tiny_overrides

SEEDS = ["Write a short poem about the sea.", "List three uses of a paper clip.", "Explain why the sky is blue."]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny model trained for a few steps on instruction records (chatml): a real Foundry checkpoint."""
    folder = tmp_path_factory.mktemp("synth")
    rows = [{"instruction": f"Task {i}: {SEEDS[i % 3]}", "output": f"Answer number {i}."} for i in range(300)]
    (folder / "chats.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    overrides = tiny_overrides(str(folder / "chats.jsonl"), steps=6) + ["data.format=chatml", "model.block_size=128"]
    (folder / "cfg.yaml").write_text("name: synth\n")
    foundry.train(foundry.load_config(folder / "cfg.yaml", overrides), folder / "run")
    return str(folder / "run")


def test_rouge_l_is_the_lcs_f_measure():
    assert rouge_l("the cat sat".split(), "the cat sat on".split()) == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rouge_l(["a", "b", "c"], ["c", "b", "a"]) == pytest.approx(1 / 3)
    assert rouge_l([], ["a"]) == 0.0 and rouge_l(["a"], ["b"]) == 0.0


def test_batched_sampling_equals_sampling_each_prompt_alone():
    torch.manual_seed(0)
    model = GPT(catalog.from_dict({"model": {"vocab_size": 256, "n_layer": 1, "n_embd": 32, "n_head": 2,
                                             "block_size": 64}, "budget": {"steps": 1}}).model)
    prompts, tok = ["Hello", "A much longer prompt", "Hi"], ByteTokenizer()
    together = sample(model, tok, prompts, 12, temperature=0, stop=())
    alone = [sample(model, tok, [p], 12, temperature=0, stop=())[0] for p in prompts]
    assert together == alone
    reference = model.generate(torch.tensor([tok.encode("Hello")]), 12, temperature=0)
    assert together[0] == tok.decode(reference[0, 5:].tolist())
    assert sample(model, tok, prompts, 12, seed=3) == sample(model, tok, prompts, 12, seed=3)  # seeded


def test_self_instruct_keeps_only_new_dissimilar_instructions():
    scripted = iter([
        # round 1: task candidates (16 prompts per round by default; here per_round=5)
        " Write a short poem about the ocean.", "", " Summarize the plot of a film you like.",
        " Summarize the plot of a film you like.", " Go.",
        # responses to the kept instruction
        " A young hero leaves home.",
    ])

    def generate(prompts, stop):
        return [next(scripted) for _ in prompts]

    records, counts = self_instruct(generate, SEEDS, n=5, per_round=5, max_rounds=1, seed=1, model="m")
    assert [r["instruction"] for r in records] == ["Summarize the plot of a film you like."]
    # "poem about the ocean" is too close to the seed "poem about the sea" (ROUGE-L 0.83 >= 0.7)
    assert counts == {"candidates": 5, "empty": 1, "length": 1, "duplicate": 1, "similar": 1, "bad_response": 0,
                      "surplus": 0, "kept": 1, "seconds": counts["seconds"]}
    provenance = records[0]["provenance"]
    assert provenance["model"] == "m" and provenance["seed"] == 1 and provenance["prompt"].startswith("Come up with")
    assert provenance["rouge_max"] < 0.7 and records[0]["output"] == "A young hero leaves home."


def test_responses_are_asked_for_in_the_models_chat_format():
    assert response_prompt("chatml", "Add 2 and 2.") == (
        "<|im_start|>user\nAdd 2 and 2.<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>")
    assert response_prompt("none", "Add 2 and 2.") == ("Instruction: Add 2 and 2.\nResponse:", "\n\n")


def test_critique_revision_makes_dpo_pairs_with_their_principle():
    constitution = load_constitution(BUILTIN_CONSTITUTION)
    calls = []

    def generate(prompts, stop):
        calls.append(prompts)
        stage = len(calls)
        return [f"text {stage} for {i}" if not (stage == 3 and i == 1) else "text 1 for 1" for i in range(len(prompts))]

    pairs, counts = critique_revision(generate, ["Is the sea salty?", "Name a colour."], constitution, seed=0)
    assert counts == {"prompts": 2, "empty": 0, "unchanged": 1, "kept": 1}      # prompt 1's revision = its response
    (pair,) = pairs
    assert pair["chosen"] == " text 3 for 0" and pair["rejected"] == " text 1 for 0"
    assert pair["principle"] in {p["id"] for p in constitution["principles"]}
    assert "Critique request:" in calls[1][0] and "Revision request:" in calls[2][0]
    assert pair["prompt"] == "Human: Is the sea salty?\n\nAssistant:"


def test_synth_and_revise_commands_write_jsonl_with_provenance(tiny_run, tmp_path, capsys):
    from foundry.data.cli import data_main
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(json.dumps({"instruction": s}) for s in SEEDS) + "\n")
    out = tmp_path / "synth.jsonl"
    assert data_main(["synth", "--model", tiny_run, "--seeds", str(seeds), "--out", str(out), "-n", "4",
                      "--max-rounds", "2", "--max-new", "24", "--batch-size", "4", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == counts["kept"] <= 4 and counts["candidates"] == 8
    assert counts["candidates"] == sum(counts[k] for k in ("empty", "length", "duplicate", "similar")) + \
        counts["kept"] + counts["bad_response"] + counts["surplus"]
    assert all(r["provenance"]["model"] == tiny_run for r in records)
    pairs_out = tmp_path / "pairs.jsonl"
    assert data_main(["revise", "--model", tiny_run, "--prompts", str(seeds), "--out", str(pairs_out),
                      "--max-new", "16", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["prompts"] == 3 and counts["kept"] + counts["empty"] + counts["unchanged"] == 3
    if counts["kept"]:
        assert all(p["constitution"] == "foundry_small" for p in load_preference_pairs(pairs_out))


def test_critique_revision_pairs_train_with_dpo(tiny_run, tmp_path):
    constitution = load_constitution(BUILTIN_CONSTITUTION)
    stage = {"n": 0}

    def generate(prompts, stop):
        stage["n"] += 1
        return [" sure, here it is" if stage["n"] == 1 else " a careful, honest answer" for _ in prompts]

    pairs, _ = critique_revision(generate, [f"Question {i}?" for i in range(8)], constitution, seed=0)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (tmp_path / "dpo.yaml").write_text("name: dpo\n")
    cfg = foundry.load_config(tmp_path / "dpo.yaml", [
        f"data.source={path}", "train.loss=dpo", f"train.init_from={tiny_run}", "model.n_layer=1", "model.n_head=2",
        "model.n_embd=32", "model.block_size=128", "train.batch_size=4", "budget.steps=2", "eval.interval=1000"])
    summary = foundry.train(cfg, tmp_path / "run")
    assert summary["status"] == "done" and summary["data"]["train_pairs"] == 7
