"""Seconds and peak memory of a TIES merge of three >= 100M-parameter models into their base,
Foundry against mergekit 0.1.5 on the same recipe, files and machine.

    python bench/merge_speed.py --mergekit-yaml /path/to/venv/bin/mergekit-yaml [--repeats 2] [--json]
        [--work DIR]   # where the four models (about 0.5 GB each in float32) are built once

The models are a random Llama-shaped base (hidden 768, 12 layers, 32000-token vocabulary, untied
head: 125M parameters, saved by transformers in 200 MB shards) and three copies with noise. Each
tool runs as its own process (`foundry merge ...` and `mergekit-yaml ...`, CPU, default options);
a thread samples its /proc/PID/status every 10 ms for the peak resident set (VmRSS, which counts
the input files' mapped pages) and the peak private memory (RssAnon: what it allocated); CPU
seconds (user + system, from getrusage) compare the tools fairly on a machine others load. Runs
alternate between the tools; every run is listed. The outputs are compared tensor by tensor.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from foundry.weights.tensors import TensorReader  # noqa: E402


def build(work: str) -> dict:
    import transformers as tf
    folders = {k: os.path.join(work, k) for k in ("base", "a", "b", "c")}
    if all(os.path.isfile(os.path.join(f, "config.json")) for f in folders.values()):
        return folders
    config = tf.LlamaConfig(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                            num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048,
                            tie_word_embeddings=False)
    torch.manual_seed(0)
    model = tf.LlamaForCausalLM(config)
    print(f"building 4 models of {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters in {work}", flush=True)
    model.save_pretrained(folders["base"], max_shard_size="200MB")
    for i, key in enumerate("abc"):
        torch.manual_seed(i + 1)
        copy = tf.LlamaForCausalLM(config)
        with torch.no_grad():
            for p, q in zip(copy.parameters(), model.parameters()):
                p.copy_(q + torch.randn_like(q) * 0.01)
        copy.save_pretrained(folders[key], max_shard_size="200MB")
        del copy
    return folders


class Sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.rss, self.private, self.done = pid, 0, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.01):
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "RssAnon")))
            except OSError:
                return
            self.rss = max(self.rss, int(fields.get("VmRSS", "0 kB").split()[0]) * 1024)
            self.private = max(self.private, int(fields.get("RssAnon", "0 kB").split()[0]) * 1024)


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> dict:
    cpu_before = cpu_seconds_of_children()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(process.pid)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{command[0]} failed: {err.strip().splitlines()[-1] if err.strip() else out}")
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds_of_children() - cpu_before, 1), "peak_rss_mb": round(sampler.rss / 2**20), "peak_private_mb": round(sampler.private / 2**20),
            "stdout": out}


def max_difference(a: str, b: str) -> float:
    ra, rb = TensorReader.from_folder(a), TensorReader.from_folder(b)
    assert sorted(ra.names()) == sorted(rb.names())
    return max(float((ra.get(n).float() - rb.get(n).float()).abs().max()) for n in ra.names())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mergekit-yaml", default=shutil.which("mergekit-yaml"))
    parser.add_argument("--work", default="/tmp/merge-speed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.mergekit_yaml or not os.path.exists(args.mergekit_yaml):
        print("mergekit-yaml not found: install mergekit==0.1.5 in a separate venv and pass --mergekit-yaml")
        return 1
    folders = build(args.work)
    recipe = {"merge_method": "ties", "base_model": folders["base"], "dtype": "float32",
              "parameters": {"normalize": True},
              "models": [{"model": folders[k], "parameters": {"weight": 0.5, "density": 0.5}} for k in "abc"]}
    path = os.path.join(args.work, "ties.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(recipe, f)
    commands = {"foundry": lambda out: [sys.executable, "-m", "foundry.cli", "merge", path, "--out", out, "--json"],
                "mergekit": lambda out: [args.mergekit_yaml, path, out, "--quiet"]}
    runs = []
    for repeat in range(args.repeats):
        for tool, command in commands.items():
            out = os.path.join(args.work, f"out-{tool}")
            shutil.rmtree(out, ignore_errors=True)
            load = os.getloadavg()[0]
            row = {"tool": tool, "repeat": repeat, "load_avg_1min": round(load, 1), **timed(command(out))}
            if tool == "foundry":
                summary = json.loads(row["stdout"])
                row["inside"] = {k: summary[k] for k in ("merge_seconds", "hash_seconds", "peak_private_mb")}
            row.pop("stdout")
            runs.append(row)
            print(json.dumps(row), flush=True)
    difference = max_difference(os.path.join(args.work, "out-foundry"), os.path.join(args.work, "out-mergekit"))
    params = sum(torch.Size(TensorReader.from_folder(folders["base"]).spec(n)[1]).numel()
                 for n in TensorReader.from_folder(folders["base"]).names())
    result = {"params_per_model": params, "runs": runs, "max_abs_difference": difference,
              "cpu_threads": torch.get_num_threads(), "cores": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"\nTIES of 3 models into their base, {params / 1e6:.1f}M parameters each (float32), "
          f"{os.cpu_count()} cores; largest tensor difference between the outputs: {difference:.3g}")
    print(f"{'tool':<9} {'run':>3} {'seconds':>8} {'cpu s':>7} {'peak RSS MB':>12} {'peak private MB':>16} {'load':>5}")
    for r in runs:
        print(f"{r['tool']:<9} {r['repeat']:>3} {r['seconds']:>8} {r['cpu_seconds']:>7} {r['peak_rss_mb']:>12} "
              f"{r['peak_private_mb']:>16} {r['load_avg_1min']:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
