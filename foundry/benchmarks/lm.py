"""The one model interface every task uses: batched log-likelihood scoring and batched greedy generation.

    lm = load_target("runs/x")                          # see targets.py (Foundry checkpoint or HF folder)
    lm.loglikelihood([("2+2=", "4")])                   # [(sum log p of "4", is_greedy)]
    lm.score([[("a:1 |", False), (" a:", False), ("1", True)]])   # one (logprob, greedy) per scored segment
    lm.generate(["Question: ...\\nAnswer:"], 256, stop=["\\n\\n"])  # greedy, stop strings removed

A backend (targets.py) supplies: encode/decode, block_size, vocab_size, device, prefix_ids (tokens
every sequence starts with, e.g. BOS), stop_ids (EOS), forward(ids (B,T)) -> logits (B,T,V), and
new_cache() / forward_cached(ids (B,t), cache, start) for generation with a KV cache.

Scoring: segments are encoded one by one and concatenated; sequences longer than the context keep
their last block_size + 1 tokens (left truncation; a BOS prefix stays in front). Requests whose
model input is identical (MMLU's four letters after one prompt) share one forward. Inputs are
sorted by length, right-padded (padding after the last real token cannot change a causal model's
earlier logits) and batched up to `batch_tokens`; one forward per batch. A scored span cut off
entirely by truncation (or empty) scores (0.0, False).

Generation: prompts keep their last block_size - max_new tokens, with max_new at most half the
context. Rows of a batch step together from the shortest prompt's length; a row still inside its
prompt is fed its next prompt token instead of the argmax, so no padding or attention mask is
needed and every backend gets exact results with its own KV cache.
"""
from __future__ import annotations

import torch

LOGITS_BUDGET = 1 << 28  # floats of (B, T, V) logits per forward: ~1 GiB in fp32


class LanguageModel:
    batch_tokens = 8192
    prefix_ids: list[int] = []
    stop_ids: set[int] = set()

    def __init__(self):
        self.tokens_forwarded = 0  # model input tokens, for throughput figures

    # ---- helpers for tasks
    def num_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def prompt_budget(self, reserve: int) -> int:
        """Tokens a prompt may use when `reserve` tokens must follow it."""
        return self.block_size - reserve - len(self.prefix_ids)

    def _max_tokens(self) -> int:
        return max(self.block_size, min(self.batch_tokens, LOGITS_BUDGET // self.vocab_size))

    # ---- scoring
    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        """(sum of log p(continuation tokens | context), whether each is the argmax) per pair."""
        results = self.score([[(context, False), (continuation, True)] for context, continuation in pairs])
        return [spans[0] for spans in results]

    def _encode_segments(self, segments) -> tuple[list[int], list[tuple[int, int]]]:
        prefix = len(self.prefix_ids)
        ids, spans = list(self.prefix_ids), []
        for text, scored in segments:
            tokens = self.encode(text)
            if scored:
                spans.append((len(ids), len(ids) + len(tokens)))
            ids.extend(tokens)
        cut = max(0, len(ids) - 1 - self.block_size)  # the model sees ids[:-1]; cut after the prefix
        ids = ids[:prefix] + ids[prefix + cut:]
        # token 0 is never predicted: a span starting there loses its first token
        return ids, [(max(s - cut, prefix, 1), e - cut) for s, e in spans]

    @torch.inference_mode()
    def score(self, requests: list[list[tuple[str, bool]]]) -> list[list[tuple[float, bool]]]:
        """For each request (a list of (text, scored) segments): (logprob, is_greedy) per scored segment."""
        encoded = [self._encode_segments(segments) for segments in requests]
        inputs: dict[tuple, int] = {}  # model input -> row in `unique`
        for ids, _ in encoded:
            inputs.setdefault(tuple(ids[:-1]), len(inputs))
        unique = list(inputs)
        users = [[] for _ in unique]  # unique input -> requests that use it
        for r, (ids, _) in enumerate(encoded):
            users[inputs[tuple(ids[:-1])]].append(r)
        results = [[(0.0, False)] * len(spans) for _, spans in encoded]
        order = sorted(range(len(unique)), key=lambda u: -len(unique[u]))
        max_tokens, start = self._max_tokens(), 0
        while start < len(order):
            width = max(1, len(unique[order[start]]))
            rows = order[start:start + max(1, max_tokens // width)]
            start += len(rows)
            self._score_batch([unique[u] for u in rows], [users[u] for u in rows], encoded, results)
        return results

    def _score_batch(self, batch_inputs, batch_users, encoded, results) -> None:
        width = max(1, max(len(x) for x in batch_inputs))
        x = torch.zeros(len(batch_inputs), width, dtype=torch.long)
        for b, ids in enumerate(batch_inputs):
            x[b, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        self.tokens_forwarded += sum(len(ids) for ids in batch_inputs)
        logits = self.forward(x.to(self.device))  # (B, T, V)
        b_idx, pos, target, owner, spans = [], [], [], [], []  # one entry per scored token
        for b, requests in enumerate(batch_users):
            for r in requests:
                ids, request_spans = encoded[r]
                for k, (s, e) in enumerate(request_spans):
                    if e <= s:
                        continue  # truncated away (or empty): stays (0.0, False)
                    b_idx += [b] * (e - s)
                    pos += range(s - 1, e - 1)  # logits at t predict token t + 1
                    target += ids[s:e]
                    owner += [len(spans)] * (e - s)
                    spans.append((r, k))
        if not spans:
            return
        picked = logits[torch.tensor(b_idx), torch.tensor(pos)].float()  # (N, V)
        target_t = torch.tensor(target, device=picked.device)
        token_lp = picked.log_softmax(-1).gather(1, target_t[:, None]).squeeze(1)  # (N,)
        misses = (picked.argmax(-1) != target_t).float()
        owner_t = torch.tensor(owner, device=picked.device)
        sums = torch.zeros(len(spans), device=picked.device).index_add_(0, owner_t, token_lp)
        wrong = torch.zeros(len(spans), device=picked.device).index_add_(0, owner_t, misses)
        for (r, k), lp, w in zip(spans, sums.tolist(), wrong.tolist()):
            results[r][k] = (lp, w == 0)

    # ---- generation
    @torch.inference_mode()
    def generate(self, prompts: list[str], max_new_tokens: int, stop: list[str] = ()) -> list[str]:
        """Greedy continuations, cut at the first stop string (which is not included)."""
        max_new = max(1, min(max_new_tokens, self.block_size // 2))
        keep = self.block_size - max_new
        room = max(1, keep - len(self.prefix_ids))
        encoded = [list(self.prefix_ids) + tokens[max(0, len(tokens) - room):]
                   for tokens in (self.encode(p) for p in prompts)]
        if any(not ids for ids in encoded):
            raise ValueError("generate: a prompt encodes to no tokens (and the model has no BOS token)")
        outputs = [""] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        start = 0
        while start < len(order):
            rows = order[start:start + max(1, self._max_tokens() // (len(encoded[order[start]]) + max_new))]
            start += len(rows)
            for i, text in zip(rows, self._generate_batch([encoded[i] for i in rows], max_new, stop)):
                outputs[i] = text
        return outputs

    def _generate_batch(self, prompts: list[list[int]], max_new: int, stop) -> list[str]:
        lengths = [len(p) for p in prompts]
        position = min(lengths)
        cache = self.new_cache()
        x = torch.tensor([p[:position] for p in prompts], dtype=torch.long, device=self.device)
        logits = self.forward_cached(x, cache, 0)[:, -1]  # (B, V)
        self.tokens_forwarded += x.numel()
        generated = [[] for _ in prompts]
        texts = [""] * len(prompts)
        done = [False] * len(prompts)
        while True:
            greedy = logits.argmax(-1).tolist()
            step = []
            for i, prompt in enumerate(prompts):
                if position < lengths[i]:
                    step.append(prompt[position])  # still reading the prompt: teacher-force it
                    continue
                token = greedy[i]
                step.append(token)
                if done[i]:
                    continue
                if token in self.stop_ids:  # end of sequence: not part of the text
                    done[i] = True
                    continue
                generated[i].append(token)
                texts[i], hit = _cut_at_stop(self.decode(generated[i]), stop)
                done[i] = hit or len(generated[i]) >= max_new
            if all(done):
                return texts
            x = torch.tensor(step, dtype=torch.long, device=self.device)[:, None]  # (B, 1)
            logits = self.forward_cached(x, cache, position)[:, -1]
            self.tokens_forwarded += len(step)
            position += 1


def _cut_at_stop(text: str, stop) -> tuple[str, bool]:
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)
