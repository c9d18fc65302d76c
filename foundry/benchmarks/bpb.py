"""bpb: validation bits per byte, computed by the trainer's own foundry.evaluation.val_metrics.

    foundry eval RUN_DIR --tasks bpb                       # the run's validation split (its data config)
    foundry eval HF_FOLDER --tasks bpb --path bpb=text.txt # any model on a text file you name

For a Foundry checkpoint with no --path bpb=..., the validation split comes from the checkpoint's
own data config (foundry.data.load_dataset, cached), so the number equals the trainer's val_bpb.
With --path bpb=FILE the UTF-8 text is encoded by the model's tokenizer and bytes per token are
counted over the tokens scored. Lower is better: the ranking value is -bpb. The slice is the
trainer's: the first eval.bytes bytes of the text (see foundry/evaluation.py); --limit N makes it
the first N bytes.
"""
from __future__ import annotations

import math

from foundry.benchmarks.common import EvalOptions
from foundry.data.jsonl import read_lines
from foundry.errors import UserError


def _slice(tokens, decode, n_bytes: int, where: str):
    from foundry.evaluation import val_slice

    try:
        return val_slice(tokens, decode, n_bytes)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None


class BitsPerByte:
    name = "bpb"
    chance = None

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def evaluate(self, lm) -> dict:
        from foundry import config as config_lib
        from foundry.evaluation import val_metrics

        cfg = getattr(lm, "cfg", None)
        path = self.opts.paths.get(self.name)
        if cfg is None:
            if not path:
                raise UserError("bpb: a Hugging Face model needs a text file: --path bpb=FILE")
            cfg = config_lib.Config()
            cfg.model.block_size = min(lm.block_size, 1024)
        n_bytes = self.opts.limit or cfg.eval.bytes
        if path:
            text = "\n".join(read_lines(path))
            # the model's prefix (a BOS token) is context only: the scored text is the file's
            if n_bytes:
                text = text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")
            tokens = lm.prefix_ids + lm.encode(text)
            tokens, bytes_per_token = _slice(tokens, lm.decode, 0, path)
            source = path
        else:
            from foundry.data import load_dataset

            dataset = load_dataset(cfg.data)
            tokens, bytes_per_token = _slice(dataset.val, dataset.tokenizer.decode, n_bytes, "eval.bytes")
            source = cfg.data.source
        metrics = val_metrics(lm.logits_module(), tokens, cfg, bytes_per_token, lm.device)
        bpb = metrics["val_bpb"]
        if not math.isfinite(bpb):
            raise UserError(f"bpb: the model's loss is not finite ({metrics['val_loss']})")
        return {"task": self.name, "metric": "bpb", "score": bpb, "chance": None, "centered": None,
                "rank_value": -bpb, "higher_is_better": False, "n": len(tokens) - 1,
                "val_loss": metrics["val_loss"], "bytes_per_token": bytes_per_token, "source": source,
                "items": []}
