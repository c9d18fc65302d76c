"""Document filters: length, exact and near duplicates, Gopher quality rules (`data.filters`, FILTERS).

    data:
      filters:
        - {name: length, min_chars: 200, max_chars: 200000}
        - {name: exact_dup}
        - {name: near_dup, threshold: 0.8}
        - {name: gopher_repetition}
        - {name: gopher_quality, min_words: 20}

    kept, report = apply_filters(documents, cfg.data.filters, tokenizer=None)
    # kept: indices of the documents every filter kept; report: per filter, what it removed and why

Filters run in list order, each on what the previous ones kept; duplicate filters keep the first
copy. They apply to the training split only (validation stays as split, so val metrics compare
across filter settings). A filter that counts tokens (`length` with min_tokens/max_tokens) needs
the run's tokenizer, which is trained on what the other filters kept: those run in a second pass
(`apply_filters(..., stage="tokens")`). Each filter class has `name`, `PARAMS` (setting -> default,
whose type the setting must have), `needs_tokenizer`, and `reasons(documents, tokenizer)` -> one
reason string per document, or None to keep it. To add one, write the class and add it to FILTERS.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

from foundry.data.dedupe import NearDuplicates
from foundry.data.quality import GopherQuality, GopherRepetition
from foundry.errors import UserError


class Length:
    """Too short or too long in characters, words or tokens (0 = no limit)."""
    name = "length"
    PARAMS = {"min_chars": 0, "max_chars": 0, "min_words": 0, "max_words": 0, "min_tokens": 0, "max_tokens": 0}

    def __init__(self, **settings):
        self.__dict__.update(settings)
        self.needs_tokenizer = bool(self.min_tokens or self.max_tokens)

    def reasons(self, documents, tokenizer=None):
        out = []
        for doc in documents:
            measures = {"chars": len(doc), "words": len(doc.split())}
            if self.needs_tokenizer:
                measures["tokens"] = len(tokenizer.encode(doc))
            reason = None
            for unit, value in measures.items():
                low, high = getattr(self, f"min_{unit}"), getattr(self, f"max_{unit}")
                if value < low:
                    reason = f"fewer than {low} {unit}"
                elif high and value > high:
                    reason = f"more than {high} {unit}"
                if reason:
                    break
            out.append(reason)
        return out


def normalized(text: str) -> str:
    """NFKC, lower case, punctuation removed, whitespace collapsed: what exact_dup compares."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


class ExactDuplicates:
    """A document whose normalized text hashes like an earlier one's."""
    name = "exact_dup"
    PARAMS = {"normalize": True}
    needs_tokenizer = False

    def __init__(self, **settings):
        self.__dict__.update(settings)

    def reasons(self, documents, tokenizer=None):
        seen, out = set(), []
        for doc in documents:
            digest = hashlib.sha256((normalized(doc) if self.normalize else doc).encode()).digest()
            out.append("exact duplicate" if digest in seen else None)
            seen.add(digest)
        return out


def build_filter(spec, where: str = "data.filters"):
    """The filter a spec names ({name: ..., setting: value}), settings checked against its PARAMS."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"{where}: expected a mapping with a 'name' (valid: {', '.join(sorted(FILTERS))}), got {spec!r}")
    name = spec["name"]
    if name not in FILTERS:
        raise UserError(f"{where}: unknown filter {name!r} (valid: {', '.join(sorted(FILTERS))})")
    cls, settings = FILTERS[name], dict(FILTERS[name].PARAMS)
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in cls.PARAMS:
            raise UserError(f"{where}.{name}: unknown setting {key!r} (valid: {', '.join(cls.PARAMS)})")
        default = cls.PARAMS[key]
        ok = isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok or (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0):
            raise UserError(f"{where}.{name}.{key}: expected a non-negative {type(default).__name__}, got {value!r}")
        settings[key] = value
    return cls(**settings)


def check_filters(specs) -> None:
    """Raise UserError naming the first bad entry of `data.filters` (called by foundry.catalog)."""
    for i, spec in enumerate(specs):
        build_filter(spec, f"data.filters[{i}]")


def apply_filters(documents: list[str], specs, tokenizer=None, stage: str = "text"):
    """(kept indices, report): run the filters of `stage` (text: those that need no tokenizer;
    tokens: those that do) in order. Each report entry: filter, settings, removed documents and
    characters, and the same per reason."""
    kept, report = list(range(len(documents))), []
    for i, spec in enumerate(specs):
        flt = build_filter(spec, f"data.filters[{i}]")
        if flt.needs_tokenizer != (stage == "tokens"):
            continue
        reasons = flt.reasons([documents[k] for k in kept], tokenizer)
        entry = {"filter": flt.name, "settings": {k: v for k, v in spec.items() if k != "name"},
                 "input_documents": len(kept), "removed_documents": 0, "removed_chars": 0, "reasons": {}}
        survivors = []
        for index, reason in zip(kept, reasons):
            if reason is None:
                survivors.append(index)
                continue
            chars = len(documents[index])
            entry["removed_documents"] += 1
            entry["removed_chars"] += chars
            why = entry["reasons"].setdefault(reason, {"documents": 0, "chars": 0})
            why["documents"] += 1
            why["chars"] += chars
        kept = survivors
        report.append(entry)
    return kept, report


FILTERS = {
    "length": Length,
    "exact_dup": ExactDuplicates,
    "near_dup": NearDuplicates,
    "gopher_repetition": GopherRepetition,
    "gopher_quality": GopherQuality,
}
