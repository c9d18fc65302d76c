"""The seam between the training loop and how many processes train one model.

    launch = launch_env()                              # RANK, WORLD_SIZE, LOCAL_RANK from torchrun
    device = pick_device(cfg.train.device, launch)     # cuda:LOCAL_RANK under torchrun
    strategy = pick_strategy(cfg, model, launch, device)   # none | ddp | fsdp; joins the process group
    model = strategy.wrap(model)         # the module the loop calls forward/backward on
    with strategy.no_sync(model): ...    # inner micro-steps of gradient accumulation: no all-reduce
    strategy.is_main                     # only rank 0 writes run files, TensorBoard and checkpoints
    strategy.reduce_mean(tensor)         # a step's loss and stats, an evaluation: averaged over ranks

Processes come from torchrun: `foundry train CONFIG --nproc N` starts it (training/launch.py), or
`torchrun --nproc-per-node N -m foundry.train CONFIG`. `train.strategy: auto` is single-process
without torchrun, DDP below FSDP_MIN_PARAMS parameters and FSDP2 (`fully_shard` on every Block,
then the model) at or above; gloo on CPU, NCCL on CUDA. train.batch_size is the global
micro-batch: each of N ranks takes its batch_size / N rows of every draw (objectives.py), all
ranks draw from the same generator, so a config trains the same curve on 1 or N processes and
its checkpoint (full weights and optimizer state, in the single-process format) resumes on M.
Dropout masks differ per rank (the torch seed is offset by rank after the model is built).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from dataclasses import dataclass

import torch

from foundry import hardware
from foundry.errors import UserError

FSDP_MIN_PARAMS = 1_000_000_000   # train.strategy auto: FSDP at or above this many parameters, else DDP


@dataclass(frozen=True)
class Launch:
    """Where this process sits among the processes torchrun started (one process: 0, 1, 0)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def launch_env(env=None) -> Launch:
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return Launch()
    try:
        return Launch(int(env.get("RANK", 0)), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UserError(f"RANK/WORLD_SIZE/LOCAL_RANK: expected integers from torchrun, got "
                        f"{env.get('RANK')!r}/{env.get('WORLD_SIZE')!r}/{env.get('LOCAL_RANK')!r}") from None


def pick_device(name: str, launch: Launch) -> torch.device:
    """train.device; under torchrun with CUDA, rank r of a node trains on cuda:LOCAL_RANK."""
    device = hardware.pick_device(name)
    if launch.world_size > 1 and device.type == "cuda":
        if device.index is not None:
            raise UserError(f"train.device={name}: with {launch.world_size} processes each takes its own GPU "
                            "(cuda:LOCAL_RANK); use train.device=auto or cuda")
        device = torch.device("cuda", launch.local_rank)
    return device


class HeldState:
    """A state dict standing in for a module or optimizer where checkpoint.py saves or loads one."""

    def __init__(self, state=None):
        self.state = state

    def state_dict(self):
        return self.state

    def load_state_dict(self, state) -> None:
        self.state = state


class NoRunFiles:
    """The run files of ranks other than 0: every RunFiles method, doing nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def rank_rows(batch_size: int, rank: int, world_size: int) -> slice:
    """This rank's rows of a global micro-batch of batch_size rows."""
    share = batch_size // world_size
    return slice(rank * share, (rank + 1) * share)


def val_share(tokens, block_size: int, n_windows: int, rank: int, world_size: int):
    """This rank's part of the validation slice: the first n_windows non-overlapping windows of
    block_size + 1 tokens (evaluation.val_windows), split in equal runs of windows, so the mean of
    the ranks' losses is the loss over the whole slice. All of it when it does not split evenly."""
    windows = min(n_windows, (len(tokens) - 1) // block_size)
    if world_size == 1 or windows % world_size:
        return tokens
    share = windows // world_size
    return tokens[rank * share * block_size:(rank + 1) * share * block_size + 1]


class SingleProcess:
    """One process, one device: nothing to wrap, shard or reduce."""
    name, rank, world_size, is_main = "none", 0, 1, True

    def __init__(self, cfg=None, launch: Launch | None = None, device=None):
        pass

    @staticmethod
    def check(cfg) -> str | None:
        """Why this strategy cannot train `cfg`, or None (catalog.py asks at load time)."""
        return None

    def wrap(self, model):
        return model

    def unwrap(self, model):
        return model

    def no_sync(self, model):
        return contextlib.nullcontext()

    def reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a stop signal seen by one rank stops them all)."""
        return flag

    def clip_grad_norm(self, parameters, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def full_state(self, model, optimizer):
        """(module, optimizer) whose state dicts rank 0 saves: full weights and optimizer state."""
        return self.unwrap(model), optimizer

    def load_optimizer_state(self, model, optimizer, state: dict) -> None:
        optimizer.load_state_dict(state)

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


class DataParallel(SingleProcess):
    """DDP: every rank holds the whole model; gradients are averaged by all-reduce after backward."""
    name = "ddp"

    def __init__(self, cfg, launch: Launch, device):
        import torch.distributed as dist
        self.dist, self.device = dist, torch.device(device)
        self.rank, self.world_size, self.is_main = launch.rank, launch.world_size, launch.rank == 0
        die_with_parent()   # torchrun starts ranks in sessions of their own: if it is killed, so are they
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    def wrap(self, model):
        from torch.nn.parallel import DistributedDataParallel
        # a feed-forward that leaves weights inactive (MoE experts no token chose) gives them no gradient
        sparse = any(block.ffn.inactive_params() for block in model.blocks)
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       broadcast_buffers=False, find_unused_parameters=sparse)

    def unwrap(self, model):
        from torch.nn.parallel import DistributedDataParallel
        return model.module if isinstance(model, DistributedDataParallel) else model

    def no_sync(self, model):
        return model.no_sync()

    def reduce_mean(self, tensor):
        total = tensor.clone()
        self.dist.all_reduce(total)   # a sum: gloo has no average
        return total / self.world_size

    def any(self, flag):
        value = torch.tensor([float(flag)], device=self.device)
        self.dist.all_reduce(value, op=self.dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self):
        self.dist.barrier()

    def close(self):
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


class FullyShard(DataParallel):
    """FSDP2: parameters, gradients and optimizer state sharded over ranks, gathered block by block."""
    name = "fsdp"

    @staticmethod
    def check(cfg) -> str | None:
        if cfg.train.ema > 0:
            return "train.ema keeps a whole copy of the weights beside the shards; use train.strategy=ddp"
        if cfg.train.lora_rank > 0:
            return "train.lora_rank (LoRA adapters) is trained with train.strategy=ddp"
        return None

    def wrap(self, model):
        from torch.distributed.fsdp import fully_shard
        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)   # the embedding, final norm and (tied) head
        return model

    def unwrap(self, model):
        return model   # fully_shard works in place

    @contextlib.contextmanager
    def no_sync(self, model):
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)

    def clip_grad_norm(self, parameters, max_norm):
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)   # over the shards: a replicated DTensor
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def full_state(self, model, optimizer):
        """Gather the full weights and optimizer state to rank 0 (on the CPU), in the single-process
        format: tied weights share one tensor, optimizer state is keyed by parameter index."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
        weights, by_name = get_state_dict(model, optimizer,
                                          options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.is_main:
            return None, None
        for name, tensor in weights.items():   # a gathered shard may view a padded buffer: save its own storage
            if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
                weights[name] = tensor.clone()
        first = {}
        for name, param in model.named_parameters(remove_duplicate=False):
            weights[name] = weights[first.setdefault(id(param), name)]   # tied: one tensor, saved once
        names = [n for group in by_name["param_groups"] for n in group["params"]]
        index = {n: i for i, n in enumerate(names)}
        return HeldState(weights), HeldState({
            "state": {index[n]: value for n, value in by_name["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in by_name["param_groups"]]})

    def load_optimizer_state(self, model, optimizer, state):
        """A full optimizer state (keyed by index, as saved by any strategy) onto the shards."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        names = {id(p): n for n, p in model.named_parameters()}
        groups = [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]
        if len(groups) != len(state["param_groups"]):
            raise ValueError(f"{len(state['param_groups'])} parameter groups saved, {len(groups)} here")
        flat = [n for group in groups for n in group]
        by_name = {"state": {flat[int(i)]: value for i, value in state["state"].items()},
                   "param_groups": [{**g, "params": groups[k]} for k, g in enumerate(state["param_groups"])]}
        set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))


def check_world(cfg, world_size: int) -> None:
    """UserError unless `world_size` processes can train `cfg` together."""
    if cfg.train.strategy == "none":
        raise UserError(f"train.strategy=none with {world_size} processes: every process would train its own "
                        "copy into the same run folder; use auto, ddp or fsdp")
    if cfg.train.batch_size % world_size:
        raise UserError(f"train.batch_size={cfg.train.batch_size} is the global micro-batch; it must divide "
                        f"evenly among {world_size} processes")


def pick_strategy(cfg, model, launch: Launch, device) -> SingleProcess:
    """train.strategy under this launch. One process is always SingleProcess (ddp and fsdp need
    torchrun); several processes need a data-parallel strategy and a batch they can split."""
    name = cfg.train.strategy
    if name not in STRATEGY_NAMES:
        raise UserError(f"train.strategy: unknown {name!r} (valid: {', '.join(STRATEGY_NAMES)})")
    if launch.world_size == 1:
        return SingleProcess()
    check_world(cfg, launch.world_size)
    if name == "auto":
        big = model.num_params() >= FSDP_MIN_PARAMS
        name = "fsdp" if big and FullyShard.check(cfg) is None else "ddp"
    reason = STRATEGIES[name].check(cfg)
    if reason:
        raise UserError(f"train.strategy={name}: {reason}")
    return STRATEGIES[name](cfg, launch, device)


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


STRATEGIES = {"none": SingleProcess, "ddp": DataParallel, "fsdp": FullyShard}
STRATEGY_NAMES = ("auto", *STRATEGIES)   # what train.strategy may say
