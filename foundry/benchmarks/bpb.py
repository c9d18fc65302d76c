"""bpb: validation bits per byte, computed by the trainer's own foundry.evaluation.val_metrics.

    foundry eval RUN_DIR --tasks bpb                       # the run's validation split (its data config)
    foundry eval HF_FOLDER --tasks bpb --path bpb=text.txt # any model on a text file you name

For a Foundry checkpoint with no --path bpb=..., the validation split comes from the checkpoint's
own data config (foundry.data.load_dataset, cached), so the number equals the trainer's val_bpb.
With --path bpb=FILE the UTF-8 text is encoded by the model's tokenizer and bytes per token are
counted over the windows scored. Lower is better: the ranking value is -bpb. The slice is
eval.batches * train.batch_size windows of block_size tokens; --limit N (eval.limit) makes it the
first N windows (fewer when the split is shorter; `n` says how many were scored).
"""
from __future__ import annotations

import dataclasses
import math

from foundry.benchmarks.common import EvalOptions
from foundry.data.jsonl import read_lines
from foundry.errors import UserError


def _text_tokens(lm, path: str, block: int, windows: int):
    """Tokens of the file and the bytes per token of the part that `windows` windows cover."""
    from foundry.evaluation import val_windows

    text = "\n".join(read_lines(path))
    tokens = lm.prefix_ids + lm.encode(text)
    try:
        used = val_windows(tokens, block, windows)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    scored = [int(t) for t in used[:, 1:].reshape(-1)]
    return tokens, len(lm.decode(scored).encode("utf-8")) / len(scored)


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
        windows = self.opts.limit or cfg.eval.batches * cfg.train.batch_size
        if windows % cfg.train.batch_size:   # --limit N scores N windows, not N rounded up to whole batches
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=windows))
        batches = windows // cfg.train.batch_size
        if path:
            tokens, bytes_per_token = _text_tokens(lm, path, cfg.model.block_size, windows)
            source = path
        else:
            from foundry.data import load_dataset

            dataset = load_dataset(cfg.data)
            tokens, bytes_per_token, source = dataset.val, dataset.val_bytes_per_token, cfg.data.source
        metrics = val_metrics(lm.logits_module(), tokens, cfg, bytes_per_token, lm.device, batches=batches)
        bpb = metrics["val_bpb"]
        if not math.isfinite(bpb):
            raise UserError(f"bpb: the model's loss is not finite ({metrics['val_loss']})")
        return {"task": self.name, "metric": "bpb", "score": bpb, "chance": None, "centered": None,
                "rank_value": -bpb, "higher_is_better": False,
                "n": min(windows, (len(tokens) - 1) // cfg.model.block_size),
                "val_loss": metrics["val_loss"], "bytes_per_token": bytes_per_token, "source": source,
                "items": []}
