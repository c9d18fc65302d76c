"""What the supervisor shows and keeps: a log file per campaign, and a live view on a terminal.

    view = View("experiments/tiny/supervisor.log")
    view.log("gen 3: 4 candidates")          # timestamped line: log file + screen
    view.update(rows)                         # terminal only: redraw the running trials' bars

On a terminal the running trials sit under the scrolling log as progress bars, redrawn in
place; otherwise (a pipe, nohup, CI) only plain log lines are printed.
"""
from __future__ import annotations

import os
import sys
import time


def progress_line(trial_id: str, worker: str, started_at: float, progress: dict, width: int = 24) -> str:
    fraction = float(progress.get("fraction") or 0.0)
    bar = "#" * int(width * fraction)
    loss = progress.get("loss")
    loss_text = f"loss {loss:.4f}" if isinstance(loss, (int, float)) else "starting"
    return (f"  {worker:<6} {trial_id:<44.44} [{bar:<{width}}] {100 * fraction:5.1f}% "
            f"{loss_text}  {time.time() - started_at:5.0f}s")


class View:
    def __init__(self, log_path: str, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        self.log_file = open(log_path, "a", encoding="utf-8")
        self.lines: list[str] = []   # the live block currently on screen
        self.last_draw = 0.0

    def log(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        self.log_file.write(line + "\n")
        self.log_file.flush()
        if self.tty:
            self._erase()
            self.stream.write(line + "\n")
            self._draw(self.lines)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, lines: list[str]) -> None:
        if not self.tty or (time.time() - self.last_draw < 0.5 and len(lines) == len(self.lines)):
            return
        self._erase()
        self._draw(lines)
        self.stream.flush()

    def _erase(self) -> None:
        if self.lines:
            self.stream.write(f"\x1b[{len(self.lines)}A\x1b[J")  # cursor up over the block, clear below

    def _draw(self, lines: list[str]) -> None:
        for line in lines:
            self.stream.write(line + "\n")
        self.lines, self.last_draw = list(lines), time.time()

    def close(self) -> None:
        if self.tty:
            self._erase()
            self.lines = []
            self.stream.flush()
        self.log_file.close()
