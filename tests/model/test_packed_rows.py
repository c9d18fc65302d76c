"""Packed rows (data.packing: bin): with doc_ids, no token attends across a document boundary and
positions restart per document, so each document's logits equal those of its own forward pass.
Every model component is checked (attention kinds, positions, norms, MLPs, FFNs).

    python -m pytest tests/model/test_packed_rows.py -q
"""
import pytest
import torch

from foundry.model.gpt import GPT
from foundry.model.modules import REGISTRIES
from foundry.model.modules.masks import packed_documents

EVERY_MODEL_COMPONENT = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry]
LENGTHS = (5, 7, 4)  # three documents filling one row of block_size 16


@pytest.mark.parametrize("kind,name", EVERY_MODEL_COMPONENT, ids=[f"{k}-{n}" for k, n in EVERY_MODEL_COMPONENT])
def test_packed_row_equals_separate_forward_passes(kind, name, tiny_config):
    torch.manual_seed(3)
    model = GPT(tiny_config(kind, name).model).eval()
    rows = torch.randint(0, 256, (2, sum(LENGTHS)))                                   # (B, T)
    doc_ids = torch.cat([torch.full((n,), i) for i, n in enumerate(LENGTHS)]).expand(2, -1).contiguous()
    with torch.no_grad():
        packed = model(rows, doc_ids=doc_ids)                                         # (B, T, V)
        start = 0
        for n in LENGTHS:
            alone = model(rows[:, start:start + n])                                   # one document
            torch.testing.assert_close(packed[:, start:start + n], alone, atol=1e-5, rtol=1e-5)
            start += n
        plain = model(rows)                          # without doc_ids the later documents see the earlier ones
    assert not torch.allclose(plain[:, LENGTHS[0]:], packed[:, LENGTHS[0]:], atol=1e-4)


def test_a_change_in_one_document_leaves_the_others_untouched(tiny_config):
    torch.manual_seed(4)
    model = GPT(tiny_config().model).eval()
    rows = torch.randint(0, 256, (1, 16))
    doc_ids = torch.tensor([[0] * 6 + [1] * 10])
    edited = rows.clone()
    edited[0, :6] = (edited[0, :6] + 1) % 256                                         # rewrite document 0
    with torch.no_grad():
        before, after = model(rows, doc_ids=doc_ids), model(edited, doc_ids=doc_ids)
    torch.testing.assert_close(before[:, 6:], after[:, 6:])


def test_documents_give_positions_within_each_document_and_a_block_diagonal_mask():
    docs = packed_documents(torch.tensor([[0, 0, 0, 1, 1, 2], [4, 4, 4, 4, 4, 4]]))
    assert docs.positions.tolist() == [[[0, 1, 2, 0, 1, 0]], [[0, 1, 2, 3, 4, 5]]]
    assert docs.same.shape == (2, 1, 6, 6)
    assert docs.same[0, 0, 3].tolist() == [False, False, False, True, True, False] and docs.same[1].all()


def test_doc_ids_are_refused_with_a_kv_cache(tiny_config):
    model = GPT(tiny_config().model).eval()
    with pytest.raises(ValueError, match="not cached generation"):
        model(torch.zeros(1, 4, dtype=torch.long), [{} for _ in model.blocks], 0, doc_ids=torch.zeros(1, 4))
