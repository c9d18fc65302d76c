"""foundry.hardware: which dtype train.dtype means on a device (bf16 detected from CPU flags, never
from a model name), autocast on CPU, and the descriptions written into summaries and commits."""
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
