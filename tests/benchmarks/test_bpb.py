"""bpb: the same number as the trainer's val_metrics for a Foundry model; a text file for any model."""
import pytest

from foundry.benchmarks.bpb import BitsPerByte
from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.targets import HuggingFaceLM
from foundry.errors import UserError


def test_foundry_bpb_equals_the_trainers_metric(tiny_lm, tiny_text):
    from foundry.data import load_dataset
    from foundry.evaluation import val_metrics

    tiny_lm.cfg.data.source = tiny_text
    result = BitsPerByte(EvalOptions()).evaluate(tiny_lm)
    dataset = load_dataset(tiny_lm.cfg.data)
    expected = val_metrics(tiny_lm.model, dataset.val, tiny_lm.cfg, dataset.val_bytes_per_token, "cpu")
    assert result["score"] == pytest.approx(expected["val_bpb"])
    assert result["rank_value"] == -result["score"] and result["higher_is_better"] is False
    assert 7.0 < result["score"] < 9.0  # a random byte model: about log2(256) bits per byte


def test_limit_scores_exactly_that_many_windows(tiny_lm, tiny_text):
    """--limit 10 with train.batch_size 16: the first 10 windows, not 16 (a whole batch)."""
    import math

    import torch
    import torch.nn.functional as F

    from foundry.data import load_dataset
    from foundry.evaluation import val_windows

    tiny_lm.cfg.data.source = tiny_text
    assert tiny_lm.cfg.train.batch_size == 16
    result = BitsPerByte(EvalOptions(limit=10)).evaluate(tiny_lm)
    dataset = load_dataset(tiny_lm.cfg.data)
    windows = torch.from_numpy(val_windows(dataset.val, tiny_lm.cfg.model.block_size, 10))   # (10, T + 1)
    with torch.no_grad():
        logits = tiny_lm.model(windows[:, :-1])
    nats = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).item()
    assert result["n"] == 10
    assert result["score"] == pytest.approx(nats / math.log(2) / dataset.val_bytes_per_token, rel=1e-5)
    whole_batch = BitsPerByte(EvalOptions(limit=16)).evaluate(tiny_lm)
    assert whole_batch["n"] == 16 and whole_batch["score"] != pytest.approx(result["score"], rel=1e-6)


def test_bpb_on_a_text_file_for_a_hugging_face_model(hf_folder, tiny_text):
    lm = HuggingFaceLM(hf_folder)
    result = BitsPerByte(EvalOptions(paths={"bpb": tiny_text}, limit=4)).evaluate(lm)
    assert result["n"] == 4 and result["bytes_per_token"] == pytest.approx(1.0)  # one byte per token
    assert 7.0 < result["score"] < 9.0
    with pytest.raises(UserError, match="needs a text file"):
        BitsPerByte(EvalOptions()).evaluate(lm)
