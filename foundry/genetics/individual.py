"""One member of a population: where its weights are, how it was made, how it scored.

    ind = Individual("g0003-005", 3, parents=["g0002-001", "g0002-004"], operator="slerp+gaussian",
                     weights="OUT/individuals/g0003-005.safetensors")
    ind.to_dict() / Individual.from_dict(d)        # the JSON form saved in OUT/state.json
    tensors = read_tensors(ind.weights)           # {name: tensor}, as the checkpoint's model.safetensors
    write_tensors(tensors, path)                  # atomically (temporary file, then rename)

`weights` is a .safetensors file with the tensor names of the base checkpoint's model.safetensors
(tied tensors stored once), so foundry.weights.checkpoint loads it into the base config's model;
`merge_recipe` is a mergekit-format recipe dict whose merge produces the weights on demand
(the CMA-ES mode, genome.build_model). Exactly one of them is set. `status` is new (not scored
yet), scored, or failed (the fitness plugin raised: `reason` says why, fitness stays None).
`extra` holds what the operators recorded (mutation sigma and rate, per-layer SLERP t, ...).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field

STATUSES = ("new", "scored", "failed")


@dataclass
class Individual:
    id: str
    generation: int
    parents: list = field(default_factory=list)
    operator: str = "init"
    weights: str | None = None
    merge_recipe: dict | None = None
    fitness: float | None = None
    scores: dict = field(default_factory=dict)
    status: str = "new"
    reason: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Individual":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def rank_key(self) -> float:
        """What selection sorts by: the fitness, failed and unscored ones below every scored one."""
        return self.fitness if self.status == "scored" and self.fitness is not None else float("-inf")

    def record(self) -> dict:
        """Its lineage entry: everything but the weights' location."""
        return {k: v for k, v in self.to_dict().items() if k not in ("weights",)}


def read_tensors(path) -> dict:
    """{name: tensor} of a safetensors file (on the CPU)."""
    from safetensors.torch import load_file
    return load_file(os.fspath(path))


def write_tensors(tensors: dict, path) -> None:
    """Write {name: tensor} as safetensors through a temporary file renamed into place."""
    from safetensors.torch import save_file
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".safetensors")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
