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

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from foundry.errors import UserError

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
)

LLAMA3 = (
    "<|begin_of_text|>{% for m in messages %}"
    "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}"
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
    "### Response:\n{{ ex.output }}{% endfor %}"
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


def render_record(fmt: str, record, where: str) -> str:
    """Training text for one JSONL record in chat format `fmt`; `where` is 'file:line' for errors."""
    if fmt not in FORMATS:
        raise UserError(f"data.format: unknown {fmt!r} (valid: {', '.join(sorted(FORMATS))})")
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    template = _compiled(fmt)
    if fmt == "alpaca":
        return template.render(examples=_alpaca_examples(record, where))
    return template.render(messages=_messages(record, where))


FORMATS = {
    "chatml": CHATML,
    "llama3": LLAMA3,
    "alpaca": ALPACA,
}
