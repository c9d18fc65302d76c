"""The Gopher heuristic quality rules (Rae et al. 2021, "Scaling Language Models", appendix A.1.1).

    {name: gopher_repetition}                        # data.filters entries; every threshold is a setting
    {name: gopher_quality, min_words: 50, max_symbol_ratio: 0.1}

`gopher_repetition` drops a document whose lines or paragraphs repeat (share of duplicate lines /
paragraphs, and of the characters in them), whose most frequent word 2-, 3-, 4-gram (occurring at
least twice) covers too many characters, or whose duplicated 5..10-grams do; thresholds are the
paper's, `ngram_scale` multiplies the n-gram ones (short documents repeat phrases more). `gopher_quality`
drops documents outside a word-count range, with a mean word length outside [3, 10] characters,
a symbol-to-word ratio (# and ...) above 0.1, over 90% of lines starting with a bullet, over 30%
ending in an ellipsis, under 80% of words containing a letter, or fewer than two English stop words.
Both are meant for prose: on code or chat data, loosen or leave them out.
"""
from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"\S+")
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}
BULLETS = ("•", "*", "-", "–", "‣", "·")
TOP_NGRAM = {2: 0.20, 3: 0.18, 4: 0.16}                                        # max share, most common n-gram
DUPLICATE_NGRAM = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}     # max share, duplicated n-grams


def duplicate_share(parts: list[str]) -> tuple[float, float]:
    """(share of parts that repeat an earlier one, share of characters in those repeats)."""
    parts = [p for p in parts if p.strip()]
    if not parts:
        return 0.0, 0.0
    seen, dup, dup_chars = set(), 0, 0
    for p in parts:
        if p in seen:
            dup, dup_chars = dup + 1, dup_chars + len(p)
        seen.add(p)
    return dup / len(parts), dup_chars / max(1, sum(len(p) for p in parts))


def top_ngram_share(words: list[str], n: int) -> float:
    """Characters of the most frequent n-gram's occurrences / characters of all words."""
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0  # nothing repeats
    return count * sum(len(w) for w in gram) / max(1, sum(len(w) for w in words))


def duplicate_ngram_share(words: list[str], n: int) -> float:
    """Characters of words inside n-grams that occur more than once / characters of all words."""
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if grams[tuple(words[i:i + n])] > 1:
            covered[i:i + n] = [True] * n
    return sum(len(w) for w, c in zip(words, covered) if c) / max(1, sum(len(w) for w in words))


class GopherRepetition:
    name = "gopher_repetition"
    PARAMS = {"max_dup_lines": 0.30, "max_dup_paragraphs": 0.30, "max_dup_line_chars": 0.20,
              "max_dup_paragraph_chars": 0.20, "ngram_scale": 1.0}
    needs_tokenizer = False

    def __init__(self, **settings):
        self.__dict__.update(settings)

    def reason(self, doc: str) -> str | None:
        lines, chars = duplicate_share(doc.split("\n"))
        if lines > self.max_dup_lines or chars > self.max_dup_line_chars:
            return "duplicate lines"
        paragraphs, chars = duplicate_share(re.split(r"\n{2,}", doc))
        if paragraphs > self.max_dup_paragraphs or chars > self.max_dup_paragraph_chars:
            return "duplicate paragraphs"
        words = WORD.findall(doc.lower())
        for n, limit in TOP_NGRAM.items():
            if top_ngram_share(words, n) > limit * self.ngram_scale:
                return f"top {n}-gram"
        for n, limit in DUPLICATE_NGRAM.items():
            if duplicate_ngram_share(words, n) > limit * self.ngram_scale:
                return f"duplicate {n}-grams"
        return None

    def reasons(self, documents, tokenizer=None):
        return [self.reason(d) for d in documents]


class GopherQuality:
    name = "gopher_quality"
    PARAMS = {"min_words": 50, "max_words": 100000, "min_mean_word": 3.0, "max_mean_word": 10.0,
              "max_symbol_ratio": 0.1, "max_bullet_lines": 0.9, "max_ellipsis_lines": 0.3,
              "min_alpha_words": 0.8, "min_stop_words": 2}
    needs_tokenizer = False

    def __init__(self, **settings):
        self.__dict__.update(settings)

    def reason(self, doc: str) -> str | None:
        words = WORD.findall(doc)
        if not self.min_words <= len(words) <= self.max_words:
            return "word count"
        mean = sum(len(w) for w in words) / len(words) if words else 0.0
        if not self.min_mean_word <= mean <= self.max_mean_word:
            return "mean word length"
        symbols = doc.count("#") + doc.count("...") + doc.count("…")
        if symbols / max(1, len(words)) > self.max_symbol_ratio:
            return "symbol-to-word ratio"
        lines = [line.strip() for line in doc.split("\n") if line.strip()]
        if lines and sum(line.startswith(BULLETS) for line in lines) / len(lines) > self.max_bullet_lines:
            return "bullet lines"
        if lines and sum(line.endswith(("...", "…")) for line in lines) / len(lines) > self.max_ellipsis_lines:
            return "ellipsis lines"
        if words and sum(any(c.isalpha() for c in w) for w in words) / len(words) < self.min_alpha_words:
            return "words without letters"
        if len(STOP_WORDS & {w.lower() for w in words}) < self.min_stop_words:
            return "stop words"
        return None

    def reasons(self, documents, tokenizer=None):
        return [self.reason(d) for d in documents]
