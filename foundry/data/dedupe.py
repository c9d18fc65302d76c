"""Near-duplicate removal: MinHash signatures of word n-gram shingles, LSH buckets (datasketch).

    {name: near_dup, threshold: 0.8, num_perm: 128, ngram: 5}      # a `data.filters` entry
    clusters = near_duplicate_pairs(documents, threshold=0.8)        # [(later, earlier), ...]

A document is a near duplicate when the Jaccard similarity of its set of word n-grams (lower case)
with an earlier kept document's is at least `threshold`. MinHash (Broder 1997) estimates that
similarity from `num_perm` hash minima; locality-sensitive hashing (datasketch.MinHashLSH, its
bands and rows chosen for `threshold - CANDIDATE_MARGIN`, so that pairs just above the threshold are
rarely missed) proposes candidates, and each candidate's Jaccard is computed exactly on the two
shingle sets before a document is dropped, so nothing below the threshold is removed. The first
copy is kept.
Documents with fewer than `ngram` words are one shingle (their whole text).
"""
from __future__ import annotations

import re

from foundry.errors import UserError

WORD = re.compile(r"\w+")
CANDIDATE_MARGIN = 0.1  # LSH proposes pairs from threshold - margin; the exact check decides


def shingles(text: str, ngram: int) -> set[bytes]:
    words = WORD.findall(text.lower())
    if len(words) <= ngram:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + ngram]).encode() for i in range(len(words) - ngram + 1)}


def signatures(documents: list[str], num_perm: int, ngram: int, seed: int = 1):
    from datasketch import MinHash
    return MinHash.bulk([sorted(shingles(d, ngram)) for d in documents], num_perm=num_perm, seed=seed)


def near_duplicate_pairs(documents: list[str], threshold: float = 0.8, num_perm: int = 128,
                         ngram: int = 5) -> list[tuple[int, int, float]]:
    """(document, the earlier kept document it duplicates, estimated Jaccard) for each dropped one."""
    from datasketch import MinHashLSH
    lsh = MinHashLSH(threshold=max(0.05, threshold - CANDIDATE_MARGIN), num_perm=num_perm)
    found = []
    for i, sig in enumerate(signatures(documents, num_perm, ngram)):
        best, mine = None, None
        for key in lsh.query(sig):
            mine = mine or shingles(documents[i], ngram)
            theirs = shingles(documents[key], ngram)
            similarity = len(mine & theirs) / len(mine | theirs)  # exact, on the shingle sets
            if similarity >= threshold and (best is None or similarity > best[1]):
                best = (key, similarity)
        if best is not None:
            found.append((i, best[0], round(best[1], 4)))
        else:
            lsh.insert(i, sig)
    return found


class NearDuplicates:
    """`near_dup`: drop a document whose MinHash-estimated n-gram Jaccard with a kept one is >= threshold."""
    name = "near_dup"
    PARAMS = {"threshold": 0.8, "num_perm": 128, "ngram": 5}
    needs_tokenizer = False

    def __init__(self, **settings):
        self.__dict__.update(settings)
        if not 0.0 < self.threshold <= 1.0 or self.num_perm < 16 or self.ngram < 1:
            raise UserError(f"near_dup: threshold must be in (0, 1], num_perm >= 16, ngram >= 1; got "
                            f"{self.threshold}, {self.num_perm}, {self.ngram}")

    def reasons(self, documents, tokenizer=None):
        out = [None] * len(documents)
        for i, _, _ in near_duplicate_pairs(documents, self.threshold, self.num_perm, self.ngram):
            out[i] = f"near duplicate (jaccard >= {self.threshold})"
        return out
