"""The machine in numbers: device choice, precision, peak FLOP/s for MFU, peak memory, descriptions.

    device = pick_device("auto")         # cuda if available, else cpu
    with autocast(device, cfg): ...      # bf16 on CUDA (train.dtype auto | bf16), else a no-op
    peak_flops(device)                   # bf16 dense peak on known GPUs; measured fp32 matmul on CPU
    describe(device)                     # the device a run trained on, for summary.json
    describe_machine()                   # OS, CPU model, cores and GPUs, for promotion commits
"""
import json
import os
import platform
import shutil
import subprocess
import time

import torch

from foundry.io import atomic_write_text

# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s).
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12,
                 "4090": 165e12, "3090": 71e12}


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def describe(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads (torch {torch.__version__})"


def autocast(device, cfg):
    """bf16 autocast on CUDA (train.dtype auto or bf16); a no-op context on CPU or fp32."""
    device = torch.device(device)
    enabled = device.type == "cuda" and cfg.train.dtype in ("auto", "bf16")
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
