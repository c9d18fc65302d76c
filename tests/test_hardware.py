"""foundry.hardware: which dtype train.dtype means on a device (bf16 detected from CPU flags, never
from a model name), autocast on CPU, glibc's malloc told to keep freed memory, and the descriptions
written into summaries and commits."""
import os
import platform
import subprocess
import sys

import pytest
import torch

from foundry import hardware
from foundry.catalog import from_dict

CPUINFO = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 {extra}\n\nprocessor\t: 1\n"


def test_bf16_is_detected_from_the_cpu_flags():
    assert hardware.cpu_flags(CPUINFO.format(extra="amx_bf16")) >= {"avx2", "amx_bf16"}
    assert hardware.fast_bf16("cpu", hardware.cpu_flags(CPUINFO.format(extra="avx512_bf16")))
    assert not hardware.fast_bf16("cpu", hardware.cpu_flags(CPUINFO.format(extra="avx512f")))
    assert hardware.cpu_flags("no flags line here") == set()


def test_auto_dtype_follows_the_device_and_explicit_choices_stand(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: {"avx2"})
    assert hardware.compute_dtype("cpu", "auto") == "fp32"
    assert hardware.compute_dtype("cpu", "bf16") == "bf16" and hardware.compute_dtype("cpu", "fp32") == "fp32"
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: {"amx_bf16"})
    assert hardware.compute_dtype("cpu", "auto") == "bf16"


def test_cpu_autocast_runs_matmuls_in_bf16_with_fp32_weights(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: set())
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with hardware.autocast("cpu", from_dict({"train": {"dtype": "bf16"}, "budget": {"steps": 1}})):
        assert layer(x).dtype == torch.bfloat16
    with hardware.autocast("cpu", from_dict({"budget": {"steps": 1}})):  # auto without the instructions: fp32
        assert layer(x).dtype == torch.float32
    assert layer.weight.dtype == torch.float32


def test_machine_description_names_the_cpu_and_cores():
    text = hardware.describe_machine()
    assert "cores" in text and text.split(", ")[0].split()[0] in ("Linux", "Darwin", "Windows")


FAULTS_PER_STEP = """
import os, resource, sys, torch
from foundry import catalog, hardware
from foundry.model.gpt import GPT
kept = hardware.keep_freed_memory() if sys.argv[1] == "keep" else None
torch.manual_seed(0)
torch.set_num_threads(1)
cfg = catalog.load(os.path.join("baselines", "shakespeare_char.yaml"), ["model.vocab_size=65", "data.source=builtin"])
model = GPT(cfg.model)
x = torch.randint(0, 65, (12, 64))
def step():
    torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(mode: str) -> tuple[str, float]:
    """Page faults per forward and backward of the shakespeare_char model, in a fresh process (the
    setting cannot be undone)."""
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout.split()
    return out[0], float(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_stops_the_page_faults_of_a_training_step():
    system_kind, system = faults_per_step("system")
    kept, faults = faults_per_step("keep")
    assert (system_kind, kept) == ("None", "True")
    assert system > 100 and faults < system / 10, (system, faults)


def test_keep_freed_memory_is_false_without_glibc(monkeypatch):
    def no_glibc(name):
        raise OSError(f"{name}: cannot open shared object file")
    monkeypatch.setattr(hardware.ctypes, "CDLL", no_glibc)
    assert hardware.keep_freed_memory() is False
