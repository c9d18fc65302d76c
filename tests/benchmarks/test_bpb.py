"""bpb: the same number as the trainer's val_metrics for a Foundry model; a text file for any model."""
import pytest

from foundry.benchmarks.bpb import BitsPerByte
from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.targets import HuggingFaceLM
from foundry.errors import UserError


def test_foundry_bpb_equals_the_trainers_metric(tiny_lm, tiny_text):
    from foundry.data import load_dataset
    from foundry.evaluation import val_metrics, val_slice

    tiny_lm.cfg.data.source = tiny_text
    result = BitsPerByte(EvalOptions()).evaluate(tiny_lm)
    dataset = load_dataset(tiny_lm.cfg.data)
    tokens, bytes_per_token = val_slice(dataset.val, dataset.tokenizer.decode, tiny_lm.cfg.eval.bytes)
    expected = val_metrics(tiny_lm.model, tokens, tiny_lm.cfg, bytes_per_token, "cpu")
    assert result["score"] == pytest.approx(expected["val_bpb"])
    assert result["rank_value"] == -result["score"] and result["higher_is_better"] is False
    assert 7.0 < result["score"] < 9.0  # a random byte model: about log2(256) bits per byte


def test_bpb_on_a_text_file_for_a_hugging_face_model(hf_folder, tiny_text):
    lm = HuggingFaceLM(hf_folder)
    result = BitsPerByte(EvalOptions(paths={"bpb": tiny_text}, limit=40)).evaluate(lm)
    assert result["n"] == 39 and result["bytes_per_token"] == pytest.approx(1.0)  # --limit: the first 40 bytes
    assert 7.0 < result["score"] < 9.0
    with pytest.raises(UserError, match="needs a text file"):
        BitsPerByte(EvalOptions()).evaluate(lm)
