"""The machine in numbers: device choice, precision, peak FLOP/s for MFU, peak memory, descriptions.

    device = pick_device("auto")         # cuda if available, else cpu; UserError for a name absent here
    threads, why = choose_threads(0)     # train.threads, else OMP_NUM_THREADS, else the cores free now
    memory_bytes("cuda")                 # what a run on that device has (GPU memory, else RAM)
    with autocast(device, cfg): ...      # bf16 where train.dtype (auto: what the device does fast) says so
    peak_flops(device)                   # bf16 dense peak on known GPUs; measured fp32 matmul on CPU
    describe(device)                     # the device a run trained on, for summary.json
    describe_machine()                   # OS, CPU model, cores and GPUs, for promotion commits
    keep_freed_memory()                  # glibc malloc keeps freed blocks for reuse (CPU training)
"""
import ctypes
import json
import os
import platform
import shutil
import subprocess
import time

import torch

from foundry.errors import UserError
from foundry.io import atomic_write_text

# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s).
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12,
                 "4090": 165e12, "3090": 71e12}


# device kind -> whether this machine and torch build have it
DEVICE_KINDS = {"cpu": lambda: True, "cuda": lambda: torch.cuda.is_available(),
                "mps": lambda: torch.backends.mps.is_available()}
DEVICE_NAMES = "auto, cpu, cuda, cuda:N, mps"


def device_name_error(name: str) -> str | None:
    """Why `name` is not a device name (None when it is one); availability is pick_device's check."""
    kind, colon, index = str(name).partition(":")
    if name == "auto" or (kind in DEVICE_KINDS and not colon) or (kind == "cuda" and index.isdigit()):
        return None
    return f"unknown device {name!r} (valid: {DEVICE_NAMES})"


def pick_device(name: str = "auto", key: str = "train.device") -> torch.device:
    """The torch device `name` means here; UserError (naming `key`) for an unknown or absent one."""
    reason = device_name_error(name)
    if reason:
        raise UserError(f"{key}: {reason}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = name.partition(":")
    if not DEVICE_KINDS[kind]():
        why = (f"torch {torch.__version__} is built without CUDA" if kind == "cuda" and not torch.version.cuda
               else f"no {kind} device found")
        raise UserError(f"{key}: {name} is not available on this machine ({why}; use cpu or auto)")
    if index and int(index) >= torch.cuda.device_count():
        raise UserError(f"{key}: {name}: this machine shows {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


def memory_bytes(name: str = "auto") -> tuple[int, str]:
    """(bytes, description) of the memory a run on device `name` has: the GPU's, else the machine's
    RAM (or the container's cgroup limit when lower)."""
    kind, _, index = str(name).partition(":")
    if kind in ("auto", "cuda") and torch.cuda.is_available():
        index = int(index or 0)
        if index < torch.cuda.device_count():
            return torch.cuda.get_device_properties(index).total_memory, f"GPU {index}"
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="utf-8") as f:
            limit = f.read().strip()
        total = min(total, int(limit)) if limit.isdigit() else total
    except OSError:
        pass
    return total, "this machine's memory"


def free_cores(interval: float = 0.25) -> float:
    """CPUs of this process's affinity set that were idle over `interval` seconds, from /proc/stat
    (a fractional count); the whole set where /proc/stat cannot be read."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))

    def sample() -> dict:
        with open("/proc/stat", encoding="utf-8") as f:
            rows = [line.split() for line in f if line.startswith("cpu") and line[3].isdigit()]
        return {int(r[0][3:]): (int(r[4]) + int(r[5]), sum(int(x) for x in r[1:9])) for r in rows}
    try:
        before = sample()
        time.sleep(interval)
        after = sample()
    except (OSError, ValueError, IndexError):
        return float(len(cpus))
    idle = 0.0
    for cpu in cpus:
        if cpu in before and cpu in after:
            total = after[cpu][1] - before[cpu][1]
            idle += (after[cpu][0] - before[cpu][0]) / total if total > 0 else 1.0
    return idle


def choose_threads(requested: int = 0) -> tuple[int, str]:
    """(intra-op threads, why): `requested` if positive, else OMP_NUM_THREADS if set, else the cores
    free right now. On a busy machine every extra thread waits for the slowest one, which shares
    its core with another process: bench/busy_cpu_threads.py measured 2 threads with one of two
    cores taken at a fraction of the speed of 1 thread."""
    if requested > 0:
        return requested, "train.threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    free = free_cores()
    return max(1, min(cpus, int(free + 0.2))), f"{free:.1f} of {cpus} cores free"


def describe(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads (torch {torch.__version__})"


# CPU instructions that make bf16 matmuls faster than fp32 (read from /proc/cpuinfo, not from a model name)
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set:
    """The feature flags of the first CPU in /proc/cpuinfo (or of the given text); empty when unknown."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return set()
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[1].split()) if ":" in line else set()


def fast_bf16(device, flags: set | None = None) -> bool:
    """Whether the device computes bf16 matmuls natively: a CUDA GPU that supports bf16, or a CPU
    with AMX or AVX512-BF16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(set(CPU_BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def compute_dtype(device, requested: str) -> str:
    """What train.dtype means on this device: "bf16" (autocast, fp32 master weights) or "fp32".
    `auto` picks bf16 where the device computes it natively, else fp32; `bf16` is bf16 everywhere
    (emulated, so slow, on a CPU without the instructions)."""
    if requested == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return requested


# glibc's malloc hands blocks above a threshold (128 KiB, growing on its own up to 32 MiB) back to the OS on
# free, so a CPU step that frees and re-allocates MB-sized activations pays fresh zeroed pages for them every
# step: ~1000 page faults per step on baselines/shakespeare_char.yaml, ~30 with these settings (tests/test_hardware.py;
# end to end: bench/train_vs_nanogpt.py --row "train.dtype=fp32 train.keep_freed_memory=false").
GLIBC_MALLOPT = {"M_TRIM_THRESHOLD": (-1, 1 << 30), "M_MMAP_THRESHOLD": (-3, 1 << 30)}  # name: (param, bytes)


def keep_freed_memory() -> bool:
    """Set GLIBC_MALLOPT, so freed memory (up to 1 GiB a block) stays in the process for reuse; the
    process then holds its peak memory until it exits. False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):   # not glibc (musl, macOS, Windows): nothing to set
        return False
    return all(mallopt(param, value) == 1 for param, value in GLIBC_MALLOPT.values())


def autocast(device, cfg):
    """bf16 autocast when compute_dtype says bf16 (CUDA or CPU), else a no-op context."""
    device = torch.device(device)
    enabled = compute_dtype(device, cfg.train.dtype) == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def describe_machine() -> str:
    """One line: OS, architecture, CPU model, core count, and the GPUs nvidia-smi lists."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores"
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.split("\n")
        gpus = [g.strip() for g in out if g.strip()]
        text += f", GPUs: {', '.join(gpus)}" if gpus else ""
    return text


def peak_flops(device) -> float:
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in GPU_PEAK_BF16.items() if k in name), 0.0)
    return measured_cpu_peak()


def measured_cpu_peak() -> float:
    """Best fp32 matmul FLOP/s over a few square sizes with the current thread count,
    measured once and cached on disk (key: machine, cores, threads, torch version)."""
    key = f"{platform.machine()}-{os.cpu_count()}-{torch.get_num_threads()}-{torch.__version__}"
    cache = os.path.join(os.environ.get("FOUNDRY_CACHE", os.path.expanduser("~/.cache/foundry")), "peak_flops.json")
    try:
        with open(cache) as f:
            known = json.load(f)
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = max(_matmul_rate(n) for n in (256, 512, 1024))
        try:
            atomic_write_text(cache, json.dumps(known))
        except OSError:
            pass  # a read-only home only costs a re-measure next time
    return known[key]


def _matmul_rate(n: int, seconds: float = 0.3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def peak_memory_mb(device) -> float:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except ImportError:
        return 0.0
