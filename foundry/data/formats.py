"""Chat formats: render a JSONL conversation record to training text with a jinja2 template.

    render_record("chatml", {"messages": [{"role": "user", "content": "Hi"}, ...]}, where="a.jsonl:3")
    render_record("alpaca", {"instruction": "...", "input": "...", "output": "..."}, where=...)

A record holds either `messages` (a list of {role, content}; roles system/user/assistant) or
`instruction` / optional `input` / `output`. chatml and llama3 turn an instruction record into a
user turn (instruction, a blank line, input) and an assistant turn (output); alpaca turns
messages into one "### Instruction / ### Response" block per user -> assistant pair, and a system
message replaces alpaca's standard preamble. To add a format, add its template to FORMATS at the end.
"""
from __future__ import annotations

import functools
import re

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from foundry.errors import UserError

# m.begin / m.end mark the span that carries loss with data.loss_on: assistant (empty otherwise):
# the assistant's content and its end-of-turn marker, so the model learns to end its turn
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.begin }}{{ m.content }}<|im_end|>{{ m.end }}\n"
    "{% endfor %}"
)

LLAMA3 = (
    "<|begin_of_text|>{% for m in messages %}"
    "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.begin }}{{ m.content }}<|eot_id|>{{ m.end }}"
    "{% endfor %}"
)

ALPACA_PREAMBLE = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.")
ALPACA_PREAMBLE_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that "
                              "provides further context. Write a response that appropriately completes "
                              "the request.")
ALPACA = (
    "{% for ex in examples %}{% if not loop.first %}\n\n{% endif %}"
    "{{ ex.preamble }}\n\n### Instruction:\n{{ ex.instruction }}\n\n"
    "{% if ex.input %}### Input:\n{{ ex.input }}\n\n{% endif %}"
    "### Response:\n{{ ex.begin }}{{ ex.output }}{{ ex.end }}{% endfor %}"
)

# our own constant templates; the sandbox keeps record contents inert even so
_ENV = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True, undefined=StrictUndefined)
ROLES = ("system", "user", "assistant")


def _text(record: dict, key: str, where: str, required: bool = True) -> str:
    value = record.get(key, None if required else "")
    if not isinstance(value, str):
        raise UserError(f"{where}: field {key!r} must be a string, got {value!r}"[:200])
    return value


def _messages(record: dict, where: str) -> list[dict]:
    """The record as a list of {role, content}; instruction records become a user/assistant pair."""
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise UserError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
        out = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise UserError(f"{where}: messages[{i}] must be {{role: {'|'.join(ROLES)}, content: str}}")
            out.append({"role": m["role"], "content": m["content"]})
        return out
    if "instruction" in record:
        user = _text(record, "instruction", where)
        extra = _text(record, "input", where, required=False)
        if extra:
            user = f"{user}\n\n{extra}"
        return [{"role": "user", "content": user}, {"role": "assistant", "content": _text(record, "output", where)}]
    raise UserError(f"{where}: expected 'messages' or 'instruction'/'output' keys, got {sorted(record)}")


def _alpaca_examples(record: dict, where: str) -> list[dict]:
    if "instruction" in record:
        extra = _text(record, "input", where, required=False)
        return [{"preamble": ALPACA_PREAMBLE_WITH_INPUT if extra else ALPACA_PREAMBLE,
                 "instruction": _text(record, "instruction", where), "input": extra,
                 "output": _text(record, "output", where)}]
    messages = _messages(record, where)
    preamble = ALPACA_PREAMBLE
    examples, pending = [], None
    for m in messages:
        if m["role"] == "system":
            preamble = m["content"]
        elif m["role"] == "user":
            pending = m["content"]
        elif pending is None:
            raise UserError(f"{where}: alpaca needs each assistant message to follow a user message")
        else:
            examples.append({"preamble": preamble, "instruction": pending, "input": "", "output": m["content"]})
            pending = None
    if not examples:
        raise UserError(f"{where}: alpaca needs at least one user -> assistant pair")
    return examples


@functools.lru_cache(maxsize=None)
def _compiled(fmt: str):
    return _ENV.from_string(FORMATS[fmt])


def _with_system(record: dict, system: str, where: str) -> dict:
    """The record as messages with `system` first (before any system message the record has)."""
    messages = _messages(record, where)
    if messages[0]["role"] == "system":
        return {"messages": [{"role": "system", "content": f"{system}\n\n{messages[0]['content']}"}, *messages[1:]]}
    return {"messages": [{"role": "system", "content": system}, *messages]}


def _marked(items: list[dict], key: str, marks: bool) -> list[dict]:
    """Each item with begin/end: the span markers around assistant output when `marks`, else empty."""
    out = []
    for item in items:
        loss = marks and (item.get("role") == "assistant" or key == "output")
        out.append({**item, "begin": BEGIN if loss else "", "end": END if loss else ""})
    return out


def render_spans(fmt: str, record, where: str, system: str | None = None) -> tuple[str, list[tuple[int, int]]]:
    """(text, spans): the training text of a record and the (start, end) character spans of its
    assistant turns (content and end-of-turn marker), the part data.loss_on: assistant trains on.
    `system` (a constitution) becomes the first system message."""
    if fmt not in FORMATS:
        raise UserError(f"data.format: unknown {fmt!r} (valid: {', '.join(sorted(FORMATS))})")
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if system:
        record = _with_system(record, system, where)
    template = _compiled(fmt)
    if fmt == "alpaca":
        items = _marked(_alpaca_examples(record, where), "output", True)
        marked = template.render(examples=items)
    else:
        items = _marked(_messages(record, where), "content", True)
        marked = template.render(messages=items)
    turns = sum(1 for item in items if item["begin"])
    if marked.count(BEGIN) != turns or marked.count(END) != turns:
        raise UserError(f"{where}: the record contains the private-use characters U+E000/U+E001 that mark turns")
    text, spans, length = [], [], 0
    for piece in re.split(f"([{BEGIN}{END}])", marked):
        if piece == BEGIN:
            start = length
        elif piece == END:
            spans.append((start, length))
        else:
            text.append(piece)
            length += len(piece)
    return "".join(text), spans


def render_record(fmt: str, record, where: str, system: str | None = None) -> str:
    """Training text for one JSONL record in chat format `fmt`; `where` is 'file:line' for errors."""
    return render_spans(fmt, record, where, system)[0]


BEGIN, END = "\ue000", "\ue001"  # private-use characters marking assistant spans while rendering

FORMATS = {
    "chatml": CHATML,
    "llama3": LLAMA3,
    "alpaca": ALPACA,
}

# the markers each format's text is built from; a BPE tokenizer keeps each as one special token
SPECIAL_TOKENS = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "alpaca": ("### Instruction:", "### Input:", "### Response:"),
}
