"""What a training run writes into its folder, and what it shows while it runs.

    RUN/config.yaml      the resolved config (vocab_size filled in)
    RUN/progress.json    rewritten atomically as it trains: step, max_steps, tokens, loss, status
    RUN/metrics.jsonl    one line per step (loss, lr, grad_norm, the objective's and FFNs' stats)
                         and per eval (val_loss, val_bpb)
    RUN/events.out.tfevents.*   TensorBoard: loss, lr, grad_norm, tokens_per_s, val metrics
    RUN/summary.json     written atomically at the end; the same keys end stdout as `key: value`
    RUN/checkpoint/      see foundry/weights/checkpoint.py

On a terminal the run shows a progress bar; otherwise a log line about every 5% of the run.
"""
import json
import os
import sys
import time

from foundry.config import save
from foundry.io import atomic_write_text

EXIT_CODES = {"done": 0, "diverged": 3, "interrupted": 130, "failed": 1}   # summary status -> exit code
SUMMARY_KEYS = ("status", "val_loss", "val_bpb", "train_tokens", "tokens_per_s", "mfu", "params",
                "flops_per_token", "peak_mem_mb", "wall_s", "config_hash")


def summary_block(summary: dict) -> str:
    """The greppable block that ends a run's output."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.6g}"
        return "null" if v is None else str(v)
    lines = [f"{key}: {fmt(summary.get(key))}" for key in SUMMARY_KEYS]
    return "---\n" + "\n".join(lines)


class RunFiles:
    def __init__(self, out_dir, cfg, stream=None):
        self.dir, self.cfg = os.fspath(out_dir), cfg
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        os.makedirs(self.dir, exist_ok=True)
        self.metrics_path = os.path.join(self.dir, "metrics.jsonl")
        self.writer, self.metrics, self.last_shown = None, None, 0.0

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop lines past the checkpoint so the curve has no duplicated steps."""
        if not os.path.exists(self.metrics_path):
            return
        with open(self.metrics_path) as f:
            kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
        atomic_write_text(self.metrics_path, "".join(kept))

    def start(self, model, data_description: str, tokenizer_name: str, device, resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter
        save(self.cfg, os.path.join(self.dir, "config.yaml"))
        self.writer = SummaryWriter(self.dir)
        self.metrics = open(self.metrics_path, "a")
        self.started = time.time()
        self.log_every = max(1, (self.cfg.max_steps() or 1000) // 20)
        from foundry.hardware import compute_dtype
        self._print(f"{self.cfg.name}: {model.num_params():,} params on {device} "
                    f"({compute_dtype(device, self.cfg.train.dtype)}), {data_description} ({tokenizer_name})"
                    + (" [resumed]" if resumed else ""))
        self._write_progress({"status": "running", "step": 0})

    def step(self, step, loss, lr, grad_norm, tokens, train_seconds, max_steps, fraction, stats=None) -> None:
        """One optimizer step; `stats` ({name: float}: MoE load per layer, DPO reward, ...) go to
        metrics.jsonl every step and to TensorBoard as train/NAME with the other scalars."""
        stats = stats or {}
        self.metrics.write(json.dumps({"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, **stats}) + "\n")
        tokens_per_s = tokens / train_seconds if train_seconds else 0.0
        now = time.time()
        if step % self.log_every and now - self.last_shown < (0.2 if self.tty else 30):
            return
        self.last_shown = now
        scalars = {"loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens_per_s, **stats}
        for key, value in scalars.items():
            self.writer.add_scalar(f"train/{key}", value, step)
        self.metrics.flush()
        self._write_progress({"status": "running", "step": step, "max_steps": max_steps, "tokens": tokens,
                              "fraction": fraction, "loss": loss, "elapsed_s": now - self.started})
        if self.tty:
            bar = "#" * int(30 * fraction)
            self.stream.write(f"\r[{bar:<30}] {100 * fraction:5.1f}% step {step} loss {loss:.4f} "
                              f"{tokens_per_s:,.0f} tok/s")
            self.stream.flush()
        else:
            self._print(f"step {step}{'/' + str(max_steps) if max_steps else ''} loss {loss:.4f} "
                        f"lr {lr:.2e} {tokens_per_s:,.0f} tok/s")

    def scalars(self, step, metrics: dict) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"val/{key}", value, step)
        self.metrics.write(json.dumps({"step": step, **metrics}) + "\n")
        self.metrics.flush()
        text = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self._print(f"{'' if not self.tty else chr(10)}eval step {step}: {text}")

    def finish(self, summary: dict) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.metrics is not None:
            self.metrics.close()
        atomic_write_text(os.path.join(self.dir, "summary.json"), json.dumps(summary, indent=2) + "\n")
        self._write_progress({"status": summary["status"], "step": summary["steps"], "fraction": 1.0})
        if self.tty:
            self.stream.write("\n")
        self._print(summary_block(summary))

    def _write_progress(self, progress: dict) -> None:
        atomic_write_text(os.path.join(self.dir, "progress.json"), json.dumps(progress) + "\n")

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
