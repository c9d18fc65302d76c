"""Every source kind, environment-variable paths and their errors: python -m pytest tests/data/test_sources.py"""
import json
import os

import pytest

from foundry.data import read_source
from foundry.errors import UserError


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("bravo text\n", encoding="utf-8")
    (folder / "a.md").write_text("alpha ü\n", encoding="utf-8")
    (folder / "sub" / "c.txt").write_text("charlie\n", encoding="utf-8")
    (folder / ".hidden").write_text("never read\n", encoding="utf-8")
    return folder


def test_text_file_is_one_document_with_a_content_hash(corpus):
    src = read_source(str(corpus / "b.txt"))
    assert src.kind == "text" and src.documents == ["bravo text\n"]
    assert len(src.hash) == 64 and src.meta["source_hash"] == src.hash and src.meta["documents"] == 1
    (corpus / "b.txt").write_text("bravo text changed\n", encoding="utf-8")
    assert read_source(str(corpus / "b.txt")).hash != src.hash


def test_folder_is_read_recursively_sorted_without_hidden_files(corpus):
    src = read_source(str(corpus))
    assert src.kind == "folder"
    assert src.documents == ["alpha ü\n", "bravo text\n", "charlie\n"]
    assert src.meta["files"] == 3 and src.meta["first_file"].endswith("a.md")


def test_glob_selects_matching_files_sorted(corpus):
    src = read_source(str(corpus / "**" / "*.txt"))
    assert src.kind == "glob" and src.documents == ["bravo text\n", "charlie\n"]
    with pytest.raises(UserError, match="no files match"):
        read_source(str(corpus / "*.nothing"))


def test_jsonl_field_and_its_errors(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"body": "one"}) + "\n\n" + json.dumps({"body": "two"}) + "\n", encoding="utf-8")
    src = read_source(str(path), field="body")
    assert src.kind == "jsonl" and src.documents == ["one", "two"] and src.meta["records"] == 2
    with pytest.raises(UserError, match=r"docs.jsonl:1: expected an object with a string field 'text'"):
        read_source(str(path))
    path.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(UserError, match=r"docs.jsonl:2: invalid JSON"):
        read_source(str(path))


def test_jsonl_chat_format_renders_every_record(tmp_path):
    path = tmp_path / "chats.jsonl"
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
            {"instruction": "Say yes.", "output": "yes"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    src = read_source(str(path), fmt="chatml")
    assert src.documents == ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n",
                             "<|im_start|>user\nSay yes.<|im_end|>\n<|im_start|>assistant\nyes<|im_end|>\n"]
    with pytest.raises(UserError, match="needs a .jsonl source"):
        read_source(str(tmp_path), fmt="chatml")


def test_environment_variables_in_paths(corpus, monkeypatch):
    monkeypatch.setenv("MY_CORPUS", str(corpus))
    assert read_source("$MY_CORPUS/b.txt").documents == ["bravo text\n"]
    assert read_source("${MY_CORPUS}/sub/c.txt").documents == ["charlie\n"]
    monkeypatch.delenv("MY_CORPUS")
    with pytest.raises(UserError, match=r"environment variable MY_CORPUS is not set \(in '\$MY_CORPUS/b.txt'\)"):
        read_source("$MY_CORPUS/b.txt")


def test_missing_and_non_utf8_files_are_named(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}/nope.txt does not exist"):
        read_source(str(tmp_path / "nope.txt"))
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(UserError, match="latin1.txt: not UTF-8"):
        read_source(str(tmp_path / "latin1.txt"))


def test_builtin_is_the_sorted_stdlib_sources_with_a_stable_hash():
    src = read_source("builtin")
    meta = src.meta
    assert src.kind == "builtin" and meta["stdlib_dir"] == os.path.dirname(os.__file__)
    assert meta["files"] == len(src.documents) == len(meta["file_list"]) >= 50
    assert meta["file_list"] == sorted(meta["file_list"]) and meta["first_file"] == meta["file_list"][0]
    assert "os.py" in meta["file_list"] and 1_000_000 < meta["bytes"] <= 6_000_000
    assert read_source("builtin").hash == src.hash
