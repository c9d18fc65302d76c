"""A constitution: principles as YAML; injected as a system message, and critique -> revision pairs.

    c = load_constitution("foundry/data/constitutions/foundry_small.yaml")   # or BUILTIN_CONSTITUTION
    system_message(c)                        # the text `data.constitution: FILE` puts first in each chat
    pairs = critique_revision(generate, prompts, c, seed=0)   # -> DPO pairs (train.loss: dpo)

File format (yaml.safe_load):

    name: foundry_small
    provenance: who wrote it, when, from what
    preamble: Follow these principles.        # heads the system message (optional)
    principles:
      - id: honest
        text: Say only what you believe is true; say when you do not know.
        critique: Point out anything in the response that is false or claims more certainty than it has.
        revision: Rewrite the response so that it is accurate and says what is uncertain.

Critique -> revision (Bai et al. 2022, "Constitutional AI", the supervised stage in miniature): for
each prompt the model answers; a principle is drawn; the model critiques its answer against the
principle's critique request, then revises it following the revision request. The pair
{prompt, chosen: revision, rejected: response} is a preference pair (the RL-from-AI-feedback
stage becomes DPO here), with the principle and the intermediate texts kept as provenance.
Pairs whose revision is empty or equal to the response are dropped. `generate(prompts, stop) -> texts`
is any batched generator (generation.sample bound to a model).
"""
from __future__ import annotations

import os
import random

import yaml

from foundry.errors import UserError

BUILTIN_CONSTITUTION = os.path.join(os.path.dirname(__file__), "constitutions", "foundry_small.yaml")
BUILTIN_PAIRS = os.path.join(os.path.dirname(__file__), "constitutions", "foundry_small_pairs.jsonl")
PRINCIPLE_KEYS = ("id", "text", "critique", "revision")

STOP = ["\n\n"]
RESPONSE = "Human: {prompt}\n\nAssistant:"
CRITIQUE = "Human: {prompt}\n\nAssistant: {response}\n\nCritique request: {request}\n\nCritique:"
REVISION = ("Human: {prompt}\n\nAssistant: {response}\n\nCritique request: {critique_request}\n\n"
            "Critique: {critique}\n\nRevision request: {request}\n\nRevision:")


def load_constitution(path) -> dict:
    """The constitution in `path`, checked: a UserError names the file and the bad entry."""
    path = os.path.expanduser(os.path.expandvars(os.fspath(path)))
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise UserError(f"data.constitution: cannot read {path} ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    principles = data.get("principles") if isinstance(data, dict) else None
    if not isinstance(principles, list) or not principles:
        raise UserError(f"{path}: expected a mapping with a non-empty 'principles' list")
    seen = set()
    for i, p in enumerate(principles):
        if not isinstance(p, dict) or not all(isinstance(p.get(k), str) and p[k].strip() for k in PRINCIPLE_KEYS):
            raise UserError(f"{path}: principles[{i}] needs non-empty strings {', '.join(PRINCIPLE_KEYS)}")
        if p["id"] in seen:
            raise UserError(f"{path}: principles[{i}]: id {p['id']!r} appears twice")
        seen.add(p["id"])
    return {"name": str(data.get("name", os.path.basename(path))), "preamble": str(data.get("preamble", "")),
            "provenance": str(data.get("provenance", "")), "principles": principles, "path": path}


def system_message(constitution: dict) -> str:
    lines = [constitution["preamble"]] if constitution["preamble"] else []
    lines += [f"- {p['text']}" for p in constitution["principles"]]
    return "\n".join(lines)


def critique_revision(generate, prompts: list[str], constitution: dict, seed: int = 0) -> tuple[list[dict], dict]:
    """(pairs, counts): one DPO pair per prompt whose revision differs from its response."""
    rng = random.Random(seed)
    principles = [rng.choice(constitution["principles"]) for _ in prompts]
    responses = [r.strip() for r in generate([RESPONSE.format(prompt=p) for p in prompts], STOP)]
    critiques = [c.strip() for c in generate([CRITIQUE.format(prompt=p, response=r, request=pr["critique"])
                                              for p, r, pr in zip(prompts, responses, principles)], STOP)]
    revisions = [v.strip() for v in generate([
        REVISION.format(prompt=p, response=r, critique_request=pr["critique"], critique=c, request=pr["revision"])
        for p, r, c, pr in zip(prompts, responses, critiques, principles)], STOP)]
    pairs, counts = [], {"prompts": len(prompts), "empty": 0, "unchanged": 0, "kept": 0}
    for p, r, c, v, pr in zip(prompts, responses, critiques, revisions, principles):
        if not v or not r:
            counts["empty"] += 1
        elif v == r:
            counts["unchanged"] += 1
        else:
            pairs.append({"prompt": RESPONSE.format(prompt=p), "chosen": " " + v, "rejected": " " + r,
                          "principle": pr["id"], "critique": c, "constitution": constitution["name"]})
    counts["kept"] = len(pairs)
    return pairs, counts
