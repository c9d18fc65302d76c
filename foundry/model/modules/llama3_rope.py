"""Llama 3 rotary embeddings: rope whose low frequencies are slowed down for a longer context.

    model: {position: llama3_rope, rope_base: 500000, rope_factor: 32, rope_low_freq_factor: 1,
            rope_high_freq_factor: 4, rope_original_positions: 8192}

transformers' `rope_scaling: {rope_type: llama3, ...}`: wavelengths longer than
original/low_freq_factor are divided by `rope_factor`, shorter than original/high_freq_factor
kept, and the band between interpolated smoothly. The attention scale stays 1.
"""
import math

import torch

from foundry.model.modules.rope import RotaryPosition, rope_inv_freq


class Llama3RotaryPosition(RotaryPosition):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.factor, self.original = cfg.rope_factor, cfg.rope_original_positions
        self.low, self.high = cfg.rope_low_freq_factor, cfg.rope_high_freq_factor

    def inv_freq(self, dim, device):  # (dim/2,)
        inv_freq = rope_inv_freq(dim, self.base, device)
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > self.original / self.low, inv_freq / self.factor, inv_freq)
        smooth = (self.original / wavelen - self.low) / (self.high - self.low)
        smoothed = (1 - smooth) * scaled / self.factor + smooth * scaled
        medium = ~(wavelen < self.original / self.high) & ~(wavelen > self.original / self.low)
        return torch.where(medium, smoothed, scaled)

    @staticmethod
    def check(cfg):
        m = cfg.model
        if m.rope_factor <= 0 or m.rope_original_positions <= 0:
            return f"llama3_rope needs rope_factor > 0 and rope_original_positions > 0, got {m.rope_factor}, {m.rope_original_positions}"
        if not 0 < m.rope_low_freq_factor < m.rope_high_freq_factor:
            return (f"llama3_rope needs 0 < rope_low_freq_factor < rope_high_freq_factor, "
                    f"got {m.rope_low_freq_factor}, {m.rope_high_freq_factor}")
        return RotaryPosition.check(cfg)


POSITIONS = {"llama3_rope": Llama3RotaryPosition}
