"""The seam between the training loop and how many processes train one model.

    strategy = pick_strategy(cfg)        # today: SingleProcess; DDP/FSDP strategies plug in here
    model = strategy.wrap(model)         # the module the loop calls forward/backward on
    with strategy.no_sync(model): ...    # inner micro-steps of gradient accumulation
    strategy.is_main                     # only the main process writes run files and checkpoints

The loop asks only these questions, so a data-parallel strategy (torchrun's RANK / WORLD_SIZE
/ LOCAL_RANK) changes this file and the registry below, not the loop.
"""
from __future__ import annotations

import contextlib


class SingleProcess:
    """One process, one device: nothing to wrap, shard or reduce."""
    rank, world_size, is_main = 0, 1, True

    def wrap(self, model):
        return model

    def unwrap(self, model):
        return model

    def no_sync(self, model):
        return contextlib.nullcontext()

    def reduce_mean(self, value: float) -> float:
        return value

    def close(self) -> None:
        pass


def pick_strategy(cfg) -> SingleProcess:
    return STRATEGIES["none"]()


STRATEGIES = {"none": SingleProcess}
