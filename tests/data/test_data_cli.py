"""`foundry data stats|filter|dedupe`: what they report and write; python -m pytest tests/data/test_data_cli.py"""
import json

import pytest

from foundry.cli import main
from foundry.data.cli import data_main

DOCS = ["The first document talks about rivers and the sea and the fish in them all day long.",
        "the FIRST document talks about rivers, and the sea and the fish in them all day long!",   # exact dup
        "Short.",
        "A different text about mountains, snow and the long walk up to the very top of the hill."]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": d, "id": i}) for i, d in enumerate(DOCS)) + "\n")
    return str(path)


def test_filter_writes_the_kept_records_and_reports_why(corpus, tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    assert data_main(["filter", corpus, "--filters", "[{name: length, min_chars: 10}, {name: exact_dup}]",
                      "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == 4 and report["kept"] == 2
    assert [(f["filter"], f["removed_documents"], f["removed_chars"]) for f in report["filters"]] == \
        [("length", 1, 6), ("exact_dup", 1, len(DOCS[1]))]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [0, 3]  # whole records kept


def test_dedupe_and_stats_print_what_they_found(corpus, tmp_path, capsys):
    assert data_main(["dedupe", corpus, "--out", str(tmp_path / "u.jsonl")]) == 0
    text = capsys.readouterr().out
    assert "exact_dup: removed 1 of 4 documents" in text and "kept 3 of 4 documents" in text
    assert data_main(["stats", corpus, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 4 and stats["chars"] == sum(map(len, DOCS))
    assert stats["would_remove"]["exact_dup"]["documents"] == 1
    assert stats["chars_per_document"]["min"] == 6


def test_filter_with_a_config_uses_its_data_filters(corpus, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  filters: [{name: length, max_chars: 50}]\nbudget: {steps: 1}\n")
    assert data_main(["filter", corpus, "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] == 1


@pytest.mark.parametrize("args,message", [
    (["filter", "SRC", "--filters", "[{name: nope}]"], "unknown filter 'nope'"),
    (["filter", "SRC"], "exactly one of --filters and --config"),
    (["frobnicate"], "unknown subcommand 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, corpus, tmp_path, capsys):
    args = [corpus if a == "SRC" else a for a in args]
    assert main(["data", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
