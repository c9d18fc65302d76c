"""The model interface: batched scoring equals a direct per-sequence computation, left truncation,
shared forwards, greedy generation equals the model's own generate, stop strings; the same on a
tiny Hugging Face GPT-2 saved to a folder, and both kinds through load_target."""
import pytest
import torch

from foundry.benchmarks.targets import (
    FoundryLM,
    HuggingFaceLM,
    load_target,
    target_kind,
)
from foundry.errors import UserError

PAIRS = [("hello world", " foo"), ("abc", "d"), ("x" * 300, "yz"), ("hello world", " fox"), ("q", "")]


def direct_loglikelihood(lm, context, continuation):
    """One unbatched forward over the (left-truncated) sequence; sum of log p of the continuation."""
    ctx, cont = lm.prefix_ids + lm.encode(context), lm.encode(continuation)
    ids = (ctx + cont)[-(lm.block_size + 1):]
    n = len(cont)
    if n == 0:
        return 0.0, False
    logits = lm.forward(torch.tensor([ids[:-1]]))[0].float().log_softmax(-1)  # (T, V)
    rows = logits[len(ids) - 1 - n:]
    lp = rows.gather(1, torch.tensor(ids[-n:])[:, None]).sum().item()
    return lp, bool((rows.argmax(-1) == torch.tensor(ids[-n:])).all())


@pytest.fixture(params=["foundry", "hf"])
def any_lm(request):
    if request.param == "foundry":
        return request.getfixturevalue("tiny_lm")
    return HuggingFaceLM(request.getfixturevalue("hf_folder"))


def test_batched_scoring_matches_direct_computation(any_lm):
    batched = any_lm.loglikelihood(PAIRS)
    any_lm.batch_tokens = 1  # one sequence per forward
    single = any_lm.loglikelihood(PAIRS)
    for (lp, greedy), (lp1, greedy1), pair in zip(batched, single, PAIRS):
        direct_lp, direct_greedy = direct_loglikelihood(any_lm, *pair)
        assert lp == pytest.approx(direct_lp, abs=1e-4) and lp1 == pytest.approx(direct_lp, abs=1e-4)
        assert greedy == greedy1 == direct_greedy


def test_identical_inputs_share_one_forward(tiny_lm):
    requests = [("The answer is", f" {letter}") for letter in "ABCD"]
    tiny_lm.loglikelihood(requests)
    # " A" is 2 bytes: all four requests feed the model the same context + " " (one sequence)
    assert tiny_lm.tokens_forwarded == len("The answer is ")


def test_score_segments_and_greedy_flags(bigram):
    lm = bigram({"a": "b", "b": "c"})
    [spans] = lm.score([[("xa", False), ("bc", True), ("zz", False), ("a", True)]])
    assert spans[0][1] is True and spans[1][1] is False  # "bc" follows "a" greedily; "a" after "z" does not
    assert spans[0][0] == pytest.approx(2 * torch.log_softmax(lm.table[ord("a")], -1)[ord("b")].item())


def test_generation_matches_the_models_own_greedy_generate(tiny_lm):
    prompts = ["Hello", "The quick brown fox jumps", "a", "x" * 100]
    outputs = tiny_lm.generate(prompts, 12)
    for prompt, text in zip(prompts, outputs):
        ids = tiny_lm.encode(prompt)[-(tiny_lm.block_size - 12):]
        ref = tiny_lm.model.generate(torch.tensor([ids]), 12, temperature=0)[0, len(ids):].tolist()
        assert text == tiny_lm.decode(ref)


def test_hf_generation_matches_transformers_generate(hf_folder):
    lm = HuggingFaceLM(hf_folder)
    prompts = ["Hello", "The quick brown fox"]
    outputs = lm.generate(prompts, 10)
    for prompt, text in zip(prompts, outputs):
        ids = torch.tensor([lm.encode(prompt)])
        ref = lm.model.generate(ids, max_new_tokens=10, do_sample=False, pad_token_id=0)[0, ids.shape[1]:]
        assert text == lm.decode([t for t in ref.tolist() if t not in lm.stop_ids])


def test_stop_strings_cut_the_text(bigram):
    lm = bigram({":": " ", " ": "4", "4": "2", "2": "\n", "\n": "Q", "Q": "u"})
    assert lm.generate(["A:", "B:"], 20, stop=["\nQ"]) == [" 42", " 42"]
    assert lm.generate(["A:"], 3) == [" 42"]  # max_new_tokens


def test_generation_caps_new_tokens_at_half_the_context(tiny_lm):
    [text] = tiny_lm.generate(["y" * 200], 1000)
    assert len(tiny_lm.encode(text)) <= tiny_lm.block_size // 2


def test_load_target_reads_the_kind_from_the_folder(foundry_checkpoint, hf_folder, tmp_path, tiny_lm):
    assert target_kind(foundry_checkpoint) == "foundry" and target_kind(hf_folder) == "hf"
    loaded = load_target(foundry_checkpoint)
    assert isinstance(loaded, FoundryLM)
    got, expected = loaded.loglikelihood(PAIRS[:2]), tiny_lm.loglikelihood(PAIRS[:2])
    assert [g for _, g in got] == [g for _, g in expected]  # is_greedy flags
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in expected], abs=1e-5)
    assert isinstance(load_target(hf_folder), HuggingFaceLM)
    with pytest.raises(UserError, match="neither a Foundry checkpoint"):
        load_target(str(tmp_path))
    with pytest.raises(UserError, match="no such folder"):
        load_target(str(tmp_path / "missing"))


def test_left_truncation_keeps_the_prefix_and_the_scored_tokens(bigram):
    lm = bigram({}, block_size=8)
    lm.prefix_ids = [0]  # as a BOS token would be
    ids, spans = lm._encode_segments([("abcdefghij", False), ("xy", True)])
    assert ids == [0] + list(b"efghijxy") and len(ids) == lm.block_size + 1
    assert [bytes(ids[s:e]) for s, e in spans] == [b"xy"]
    ids, spans = lm._encode_segments([("ab", False), ("0123456789", True)])  # the span itself is cut
    assert ids == [0] + list(b"23456789") and spans == [(1, 9)]
    [text] = lm.generate(["abcdefghij"], 2)
    assert len(text) == 2
