"""Chat templates (chatml, llama3, alpaca) and curricula: python -m pytest tests/data/test_formats.py"""
import pytest

from foundry.data import CURRICULA, FORMATS, order_documents, render_record
from foundry.errors import UserError

CHAT = {"messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "2+2?"},
                     {"role": "assistant", "content": "4"}]}
INSTRUCTION = {"instruction": "Add the numbers.", "input": "2 and 2", "output": "4"}


def test_chatml():
    assert render_record("chatml", CHAT, "t:1") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n")
    assert render_record("chatml", INSTRUCTION, "t:1") == (
        "<|im_start|>user\nAdd the numbers.\n\n2 and 2<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n")


def test_llama3():
    assert render_record("llama3", CHAT, "t:1") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>")


def test_alpaca_instruction_and_messages():
    with_input = render_record("alpaca", INSTRUCTION, "t:1")
    assert with_input.startswith("Below is an instruction that describes a task, paired with an input")
    assert with_input.endswith("### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 2\n\n### Response:\n4")
    no_input = render_record("alpaca", {"instruction": "Say hi.", "output": "hi"}, "t:1")
    assert "### Input" not in no_input and no_input.endswith("### Instruction:\nSay hi.\n\n### Response:\nhi")
    # a system message replaces the preamble; each user -> assistant pair is one block
    two_turns = dict(messages=CHAT["messages"] + [{"role": "user", "content": "3+3?"},
                                                  {"role": "assistant", "content": "6"}])
    assert render_record("alpaca", two_turns, "t:1") == (
        "Be brief.\n\n### Instruction:\n2+2?\n\n### Response:\n4\n\n"
        "Be brief.\n\n### Instruction:\n3+3?\n\n### Response:\n6")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_record_content_is_not_template_code(fmt):
    record = {"messages": [{"role": "user", "content": "{{ 7 * 6 }} {% if x %}"},
                           {"role": "assistant", "content": "ok"}]}
    assert "{{ 7 * 6 }} {% if x %}" in render_record(fmt, record, "t:1")


@pytest.mark.parametrize("record, message", [
    ({"text": "x"}, "expected 'messages' or 'instruction'"),
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}]}, r"messages\[0\]"),
    ({"instruction": "x"}, "'output' must be a string"),
    (["not", "an", "object"], "expected a JSON object"),
])
def test_malformed_records_name_the_line(record, message):
    with pytest.raises(UserError, match=message) as info:
        render_record("chatml", record, "chats.jsonl:7")
    assert str(info.value).startswith("chats.jsonl:7")


def test_unknown_format_lists_valid_ones():
    with pytest.raises(UserError, match="valid: alpaca, chatml, llama3"):
        render_record("vicuna", CHAT, "t:1")


def test_curricula():
    docs = ["ccc", "a", "bb", "d", "eeee"]
    assert order_documents("none", docs) == docs
    assert order_documents("length", docs) == ["a", "d", "bb", "ccc", "eeee"]  # stable for ties
    assert {"none", "length"} <= set(CURRICULA)
    with pytest.raises(UserError, match="valid: length, none"):
        order_documents("random", docs)
