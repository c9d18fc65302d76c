"""Batched sampling from a Foundry GPT with its KV cache, for synthesis (synth.py, constitution.py).

    texts = sample(model, tokenizer, ["Instruction: ...\\nResponse:", ...], max_new_tokens=96,
                   temperature=0.7, top_p=0.9, stop=["\\n\\n"], seed=0)

Prompts of different lengths share one batch without padding: every row steps from the shortest
prompt's length, and a row still inside its prompt is fed its next prompt token instead of a
sample (the trick benchmarks/lm.py uses for greedy decoding), so each row's result equals
sampling it alone. Prompts keep their last block_size - max_new_tokens tokens. Sampling:
temperature (0 = greedy), then nucleus (top_p) on the sorted probabilities.
"""
from __future__ import annotations

import torch


def _pick(logits, temperature: float, top_p: float, generator):
    """(B, V) logits -> (B,) next ids."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest set reaching top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], max_new_tokens: int = 64, temperature: float = 0.7,
           top_p: float = 0.9, stop=("\n\n",), seed: int = 0, batch_size: int = 16) -> list[str]:
    """One continuation per prompt, cut before the first stop string."""
    model.eval()
    device = next(model.parameters()).device
    block = model.cfg.block_size
    max_new = max(1, min(max_new_tokens, block // 2))
    generator = torch.Generator(device=device).manual_seed(seed)
    encoded = [tokenizer.encode(p)[-(block - max_new):] or [0] for p in prompts]
    outputs = [""] * len(prompts)
    for first in range(0, len(prompts), batch_size):
        rows = list(range(first, min(len(prompts), first + batch_size)))
        for i, text in zip(rows, _sample_batch(model, tokenizer, [encoded[i] for i in rows], max_new,
                                                temperature, top_p, stop, generator, device)):
            outputs[i] = text
    return outputs


def _sample_batch(model, tokenizer, prompts, max_new, temperature, top_p, stop, generator, device):
    lengths = [len(p) for p in prompts]
    position = min(lengths)
    caches = [{} for _ in model.blocks]
    x = torch.tensor([p[:position] for p in prompts], dtype=torch.long, device=device)
    logits = model(x, caches, 0)[:, -1]                                                   # (B, V)
    generated, texts, done = [[] for _ in prompts], [""] * len(prompts), [False] * len(prompts)
    while position < model.cfg.block_size:
        picked = _pick(logits, temperature, top_p, generator).tolist()
        step = []
        for i, prompt in enumerate(prompts):
            if position < lengths[i]:
                step.append(prompt[position])            # still reading its prompt
                continue
            step.append(picked[i])
            if not done[i]:
                generated[i].append(picked[i])
                texts[i] = tokenizer.decode(generated[i])
                cuts = [texts[i].find(s) for s in stop if s and s in texts[i]]
                if cuts:
                    texts[i] = texts[i][:min(cuts)]
                done[i] = bool(cuts) or len(generated[i]) >= max_new
        if all(done):
            break
        logits = model(torch.tensor(step, device=device)[:, None], caches, position)[:, -1]
        position += 1
    return texts
