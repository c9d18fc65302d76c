"""No position signal at all (NoPE): attention sees only the causal mask.

Causal decoders can still infer order from the mask alone (Haviv et al., 2022); this is the
control arm for position experiments. Select it with `model.position: none`.
"""
from foundry.model.protocols import Position


class NoPosition(Position):
    """Every Position hook keeps its default: no embedding, no rotation, no bias."""


POSITIONS = {"none": NoPosition}
