"""A tiny PNG line plotter (zlib + struct only), so figures need no plotting library.

    plot_png("curve.png", [(xs, ys, (40, 90, 200))], vlines=[(3e-3, (200, 40, 40))], log_x=True)

Draws axes, tick labels (digits, '.', '-', 'e' in a 3x5 pixel font), polylines and vertical
marker lines on a white canvas. Enough for an LR range test or a loss curve; nothing more.
"""
from __future__ import annotations

import math
import os
import struct
import tempfile
import zlib

GLYPHS = {  # 3x5 bitmaps, one string of 15 pixels per character, row by row
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "e": "000111101110111", " ": "000000000000000",
}


def encode_png(pixels: list[bytearray], width: int, height: int) -> bytes:
    """RGB rows (3 bytes per pixel) -> PNG bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.rows = [bytearray(b"\xff" * (3 * width)) for _ in range(height)]

    def dot(self, x: int, y: int, color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.rows[y][3 * x:3 * x + 3] = bytes(color)

    def line(self, x0, y0, x1, y1, color) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), color)

    def text(self, x: int, y: int, text: str, color=(0, 0, 0), scale: int = 2) -> None:
        for k, ch in enumerate(text):
            glyph = GLYPHS.get(ch, GLYPHS[" "])
            for i, bit in enumerate(glyph):
                if bit == "1":
                    for dx in range(scale):
                        for dy in range(scale):
                            self.dot(x + (k * 4 + i % 3) * scale + dx, y + (i // 3) * scale + dy, color)

    def png(self) -> bytes:
        return encode_png(self.rows, self.width, self.height)


def plot_png(path: str, series, vlines=(), log_x: bool = False, width: int = 640, height: int = 400,
             y_range: tuple[float, float] | None = None) -> None:
    """series: [(xs, ys, rgb)]; vlines: [(x, rgb)]. Writes the PNG atomically."""
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs = [fx(x) for s in series for x in s[0]]
    ys = [y for s in series for y in s[1] if math.isfinite(y)]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = y_range or (min(ys), max(ys))
    x_hi, y_hi = (x_hi if x_hi > x_lo else x_lo + 1), (y_hi if y_hi > y_lo else y_lo + 1)
    left, right, top, bottom = 70, width - 20, 20, height - 40
    canvas = Canvas(width, height)

    def px(x):
        return round(left + (fx(x) - x_lo) / (x_hi - x_lo) * (right - left))

    def py(y):
        y = min(max(y, y_lo), y_hi)
        return round(bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

    grey = (120, 120, 120)
    canvas.line(left, bottom, right, bottom, grey)
    canvas.line(left, top, left, bottom, grey)
    ticks = range(math.ceil(x_lo), math.floor(x_hi) + 1) if log_x else [x_lo + (x_hi - x_lo) * i / 4 for i in range(5)]
    for t in ticks:
        value = 10 ** t if log_x else t
        x = px(value)
        canvas.line(x, bottom, x, bottom + 5, grey)
        canvas.text(x - 12, bottom + 10, f"1e{t}" if log_x else f"{t:.3g}")
    for i in range(5):
        y_value = y_lo + (y_hi - y_lo) * i / 4
        canvas.line(left - 5, py(y_value), left, py(y_value), grey)
        canvas.text(8, py(y_value) - 5, f"{y_value:.3f}"[:6])
    for x, color in vlines:
        canvas.line(px(x), top, px(x), bottom, color)
    for xs_, ys_, color in series:
        points = [(px(x), py(y)) for x, y in zip(xs_, ys_) if math.isfinite(y)]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            canvas.line(x0, y0, x1, y1, color)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".png")
    with os.fdopen(fd, "wb") as f:
        f.write(canvas.png())
    os.replace(tmp, path)  # atomic, like foundry.config.atomic_write_text (which writes text)
