"""Fixtures shared by the fusion tests: two tiny experts of different families and widths, and two
small corpora (built once per test module, as each module did before)."""
import pytest

from tests.fusion.helpers import corpora, make_expert


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
    root = tmp_path_factory.mktemp("experts")
    return {"gpt2": make_expert(root / "gpt2", "gpt2", seed=1), "llama": make_expert(root / "llama", "llama", seed=2)}


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return corpora(tmp_path_factory.mktemp("corpora"))
