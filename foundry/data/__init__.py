"""The data pipeline: tokenizers, sources, chat formats, filters, curricula, packing, the token cache,
batches, preference pairs, constitutions and synthesis.

    from foundry.data import load_dataset, get_batch, tokenizer_from_json
    ds = load_dataset(cfg.data)                       # cached, memory-mapped train/val token arrays
    x, y = get_batch(ds.train, batch_size, block_size, np.random.default_rng(seed))
    x, y, doc_ids = PACKINGS[cfg.data.packing](ds, block_size).batch(batch_size, rng)

Files: tokenizer.py (TOKENIZERS), hf_tokenizer.py (the hf kind), sources.py (data.source), formats.py (FORMATS, jinja2 chat
templates, assistant spans, SPECIAL_TOKENS), filters.py (FILTERS; dedupe.py MinHash, quality.py Gopher
rules), curriculum.py (CURRICULA, SCHEDULES), documents.py (training split -> tokens), packing.py
(PACKINGS), cache.py (token cache), dataset.py (load_dataset, get_batch), preference.py
(load_preference_pairs), jsonl.py (read_jsonl, read_lines), constitution.py and constitutions/,
generation.py (batched sampling), synth.py (self-instruct), cli.py (`foundry data`). Each registry
is a dict at the end of its file.
"""
from foundry.data.cache import cache_root
from foundry.data.curriculum import CURRICULA, SCHEDULES, order_documents
from foundry.data.dataset import (
                                    DOCUMENT_SEPARATOR,
                                    Dataset,
                                    get_batch,
                                    load_dataset,
                                    split_documents,
)
from foundry.data.filters import FILTERS, apply_filters
from foundry.data.formats import FORMATS, render_record
from foundry.data.hf_tokenizer import HFTokenizer, load_tokenizer_file
from foundry.data.packing import PACKINGS
from foundry.data.preference import load_preference_pairs
from foundry.data.sources import Source, expand_path, read_source
from foundry.data.tokenizer import (
                                    TOKENIZERS,
                                    BpeTokenizer,
                                    ByteTokenizer,
                                    CharTokenizer,
                                    build_tokenizer,
                                    tokenizer_from_json,
)

__all__ = [
    "CURRICULA", "SCHEDULES", "DOCUMENT_SEPARATOR", "FILTERS", "FORMATS", "PACKINGS", "apply_filters", "TOKENIZERS",
    "BpeTokenizer", "ByteTokenizer", "CharTokenizer", "Dataset", "HFTokenizer", "Source", "build_tokenizer", "cache_root",
    "expand_path", "get_batch", "load_dataset", "load_tokenizer_file",
    "load_preference_pairs", "order_documents", "read_source", "render_record", "split_documents",
    "tokenizer_from_json",
]
