"""What the supervisor shows and keeps: a log file per campaign, and a live view on a terminal.

    view = View("experiments/tiny/supervisor.log")
    view.log("gen 3: 4 candidates")          # timestamped line: log file + screen
    view.update(rows)                         # the running trials' progress (not in the log file)

On a terminal the running trials sit under the scrolling log as progress bars, redrawn in
place; every line is cut to the terminal's width, so one line is one row and the redraw
erases exactly what it drew. Otherwise (a pipe, nohup, CI) the log lines are printed as
they come and the running trials' progress as plain lines every PLAIN_PROGRESS_S seconds.
"""
from __future__ import annotations

import os
import shutil
import sys
import time

PLAIN_PROGRESS_S = 20.0


def progress_line(trial_id: str, worker: str, started_at: float, progress: dict, columns: int = 100) -> str:
    """One running trial in at most `columns - 1` characters: the trial id gives way first."""
    fraction = float(progress.get("fraction") or 0.0)
    bar_width = 24 if columns >= 100 else 10
    loss = progress.get("loss")
    loss_text = f"loss {loss:.4f}" if isinstance(loss, (int, float)) else "starting"
    head = f"  {worker:<6} "
    tail = (f" [{'#' * int(bar_width * fraction):<{bar_width}}] {100 * fraction:5.1f}% "
            f"{loss_text}  {time.time() - started_at:5.0f}s")
    room = max(8, columns - 1 - len(head) - len(tail))
    name = trial_id if len(trial_id) <= room else trial_id[:room - 1] + "~"
    return (head + f"{name:<{room}}" + tail)[:columns - 1]


class View:
    def __init__(self, log_path: str, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        self.log_file = open(log_path, "a", encoding="utf-8")
        self.lines: list[str] = []   # the live block currently on screen
        self.last_draw = time.time()

    def columns(self) -> int:
        """The terminal's width (80 when unknown: a pipe gets lines as wide as that too)."""
        return shutil.get_terminal_size((80, 24)).columns if self.tty else 80

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
        if not self.tty:   # a pipe or a log: the running trials as plain lines, now and then
            if lines and time.time() - self.last_draw >= PLAIN_PROGRESS_S:
                stamp = time.strftime('%Y-%m-%d %H:%M:%S')
                self.stream.write("".join(f"{stamp} progress {line.strip()}\n" for line in lines))
                self.stream.flush()
                self.last_draw = time.time()
            return
        if time.time() - self.last_draw < 0.5 and len(lines) == len(self.lines):
            return
        self._erase()
        self._draw(lines)
        self.stream.flush()

    def _erase(self) -> None:
        if self.lines:
            self.stream.write(f"\x1b[{len(self.lines)}A\x1b[J")  # cursor up over the block, clear below

    def _draw(self, lines: list[str]) -> None:
        width = self.columns() - 1   # a line as wide as the terminal wraps on some terminals
        lines = [line[:width] for line in lines]
        for line in lines:
            self.stream.write(line + "\n")
        self.lines, self.last_draw = list(lines), time.time()

    def close(self) -> None:
        if self.tty:
            self._erase()
            self.lines = []
            self.stream.flush()
        self.log_file.close()
