"""What a training run writes into its folder, and what it shows while it runs.

    RUN/config.yaml      the resolved config (vocab_size filled in)
    RUN/progress.json    rewritten atomically as it trains: status, step, max_steps, fraction,
                         tokens, loss, and the trainer's pid and host (foundry.io.run_status:
                         a run whose pid is gone is `dead`, whatever progress.json last said)
    RUN/metrics.jsonl    one line per step (loss, lr, grad_norm, the objective's and FFNs' stats)
                         and per eval (val_loss, val_bpb)
    RUN/events.out.tfevents.*   TensorBoard, common tag names: train/loss, train/lr, train/grad_norm,
                         train/tokens_per_s, val/loss, val/bpb (TB_TAGS; other metrics as val/NAME)
    RUN/summary.json     written atomically at the end; the same keys end stdout as `key: value`
    RUN/checkpoint/      see foundry/weights/checkpoint.py

A (re)start keeps exactly the steps the checkpoint holds (none for a fresh start): metrics.jsonl
and the TensorBoard points past it are dropped, so after any kills and resumes each step has one
row and one point. JSON has no NaN: a diverged loss is written as null (foundry.io.to_json).
On a terminal the run shows a progress bar; otherwise a log line about every 5% of the run.
"""
import glob
import json
import os
import shutil
import socket
import sys
import tempfile
import time

from foundry.config import save
from foundry.io import atomic_write_text, to_json, write_json

EVENTS = "events.out.tfevents.*"

EXIT_CODES = {"done": 0, "diverged": 3, "interrupted": 130, "failed": 1}   # summary status -> exit code
TB_TAGS = {"val_loss": "val/loss", "val_bpb": "val/bpb"}   # metric -> TensorBoard tag (was val/val_loss, ...)
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
        """Keep the lines of steps up to `step` (the checkpoint's; 0 = none), and none half-written."""
        if not os.path.exists(self.metrics_path):
            return
        kept = []
        with open(self.metrics_path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:   # the last line of a process killed mid-write
                    continue
                if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                    kept.append(to_json(row) + "\n")
        atomic_write_text(self.metrics_path, "".join(kept))

    def truncate_events(self, step: int) -> None:
        """TensorBoard: rewrite the old event files' scalar points up to `step` into one file, each
        (tag, step) once, then drop the old files; TensorBoard would otherwise show both attempts."""
        old = sorted(glob.glob(os.path.join(self.dir, EVENTS)))
        for stale in glob.glob(os.path.join(self.dir, ".tmp-events-*")):
            shutil.rmtree(stale, ignore_errors=True)
        if not old:
            return
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
        from torch.utils.tensorboard import SummaryWriter
        points = {}
        for path in old:
            try:
                for event in LegacyEventFileLoader(path).Load():
                    if event.WhichOneof("what") == "summary" and event.step <= step:
                        for value in event.summary.value:
                            if value.WhichOneof("value") == "simple_value":
                                points[(event.step, value.tag)] = (value.simple_value, event.wall_time)
            except Exception:   # a file cut short by a kill: keep what could be read
                pass
        if points:
            tmp = tempfile.mkdtemp(dir=self.dir, prefix=".tmp-events-")
            writer = SummaryWriter(tmp)
            for (point_step, tag), (value, wall_time) in sorted(points.items()):
                writer.add_scalar(tag, value, point_step, walltime=wall_time)
            writer.close()
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), os.path.join(self.dir, name))
            os.rmdir(tmp)
        for path in old:
            os.unlink(path)

    def start(self, model, data_description: str, tokenizer_name: str, device, step: int = 0,
              threads: str = "") -> None:
        """Begin writing at `step` (the resumed checkpoint's; 0 = a fresh start, stale files of an
        earlier attempt dropped)."""
        from torch.utils.tensorboard import SummaryWriter
        self.truncate_metrics(step)
        self.truncate_events(step)
        if not step:
            for name in ("summary.json", "progress.json"):
                if os.path.exists(os.path.join(self.dir, name)):
                    os.unlink(os.path.join(self.dir, name))
        save(self.cfg, os.path.join(self.dir, "config.yaml"))
        self.writer = SummaryWriter(self.dir)
        self.metrics = open(self.metrics_path, "a", encoding="utf-8")
        self.started = time.time()
        self.log_every = max(1, (self.cfg.max_steps() or 1000) // 20)
        from foundry.hardware import compute_dtype
        self._print(f"{self.cfg.name}: {model.num_params():,} params on {device} "
                    f"({compute_dtype(device, self.cfg.train.dtype)})" + (f", {threads}" if threads else "")
                    + f", {data_description} ({tokenizer_name})"
                    + (f" [resumed at step {step}]" if step else ""))
        self._write_progress({"status": "running", "step": step})

    def step(self, step, loss, lr, grad_norm, tokens, train_seconds, max_steps, fraction, stats=None) -> None:
        """One optimizer step; `stats` ({name: float}: MoE load per layer, DPO reward, ...) go to
        metrics.jsonl every step and to TensorBoard as train/NAME with the other scalars."""
        stats = stats or {}
        self.metrics.write(to_json({"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, **stats}) + "\n")
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
            self.writer.add_scalar(TB_TAGS.get(key, f"val/{key}"), value, step)
        self.metrics.write(to_json({"step": step, **metrics}) + "\n")
        self.metrics.flush()
        text = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self._print(f"{'' if not self.tty else chr(10)}eval step {step}: {text}")

    def finish(self, summary: dict, fraction: float) -> None:
        """`fraction`: of the budget trained (1.0 when done; 130 of 245 steps when interrupted there)."""
        if self.writer is not None:
            self.writer.close()
        if self.metrics is not None:
            self.metrics.close()
        write_json(os.path.join(self.dir, "summary.json"), summary)
        self._write_progress({"status": summary["status"], "step": summary["steps"], "fraction": fraction,
                              "max_steps": self.cfg.max_steps()})
        if self.tty:
            self.stream.write("\n")
        self._print(summary_block(summary))

    def _write_progress(self, progress: dict) -> None:
        progress.update(pid=os.getpid(), host=socket.gethostname(), updated_at=time.time())
        write_json(os.path.join(self.dir, "progress.json"), progress, indent=None)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

