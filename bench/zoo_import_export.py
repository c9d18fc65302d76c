"""Time and peak memory of `foundry zoo import` and `export` for a >= 100M-parameter model, against
loading the same folder with transformers alone.

    python bench/zoo_import_export.py                       # qwen2-0.5b shape, random bf16 weights
    python bench/zoo_import_export.py --preset gpt2 --dtype fp32 --shard 200MB

Builds a random model of the preset's shape with transformers (from its config; no download),
saves it sharded with save_pretrained, then measures, each in a fresh process: transformers'
AutoModelForCausalLM.from_pretrained (the reference), foundry zoo import, loading the imported
checkpoint with Foundry, and foundry zoo export. Memory is sampled from /proc/self/status every
5 ms: `anon MB` is the peak of private memory (RssAnon: what the step really holds), `rss MB` the
peak resident set including file pages mapped from the weight files (RssAnon + RssFile), both above
the process's figures after its imports. transformers maps the safetensors lazily, so its load is
followed by one pass over every weight (a model is loaded to be used); the export's output is
checked tensor for tensor against the source (torch.equal).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DTYPES = {"bf16": "bfloat16", "fp32": "float32"}


def memory_mb() -> tuple[float, float]:
    """(RssAnon, RssAnon + RssFile) of this process now, in MB."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["RssAnon"], fields["RssAnon"] + fields["RssFile"]


class PeakMemory(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.base, self.peak, self.running = memory_mb(), memory_mb(), True

    def run(self):
        while self.running:
            now = memory_mb()
            self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1]))
            time.sleep(0.005)

    def stop(self) -> tuple[float, float]:
        self.running = False
        self.join()
        return self.peak[0] - self.base[0], self.peak[1] - self.base[1]


def measure(step: str, src: str, work: str, dtype: str) -> dict:
    """One step, in this (fresh) process: seconds and peak MB above the post-import baseline."""
    import torch
    import transformers  # noqa: F401  (imported before the baseline, like torch)

    from foundry.weights.checkpoint import load_model
    from foundry.zoo import export_run, import_folder
    sampler = PeakMemory()
    sampler.start()
    start = time.perf_counter()
    if step == "transformers":
        model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, DTYPES[dtype]))
        n = model.num_parameters()
        with torch.no_grad():
            sum(float(p.float().sum()) for p in model.parameters())  # touch every weight once
    elif step == "import":
        n = import_folder(src, os.path.join(work, "run"), log=lambda *a: None)["params"]
    elif step == "foundry_load":
        n = load_model(os.path.join(work, "run"))[0].num_params()
    elif step == "export":
        export_run(os.path.join(work, "run"), os.path.join(work, "export"), max_shard_bytes=2**62, log=lambda *a: None)
        n = 0
    seconds = time.perf_counter() - start
    anon, rss = sampler.stop()
    return {"step": step, "seconds": round(seconds, 2), "anon_mb": round(anon), "rss_mb": round(rss), "params": n}


def build(preset: str, dtype: str, shard: str, folder: str) -> int:
    import torch
    import transformers

    from foundry import catalog
    from foundry.zoo import exportable_family, hf_config_of
    from tests.zoo.hf_models import tiny_tokenizer
    m = catalog.from_dict({"model": {"preset": preset}, "budget": {"steps": 1}}).model
    hf = dict(hf_config_of(exportable_family(m), m))
    config = transformers.AutoConfig.for_model(hf.pop("model_type"), **hf)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, DTYPES[dtype]))
    model.save_pretrained(folder, max_shard_size=shard)
    transformers.PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer()).save_pretrained(folder)
    return model.num_parameters()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="qwen2-0.5b")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--shard", default="400MB", help="save_pretrained's max_shard_size for the source folder")
    p.add_argument("--work", help="folder for the model files (default: a temporary one, removed after)")
    p.add_argument("--measure", nargs=3, metavar=("STEP", "SRC", "WORK"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.dtype)))
        return
    work = args.work or tempfile.mkdtemp(prefix="zoo-bench-")
    src = os.path.join(work, "hf")
    try:
        start = time.perf_counter()
        params = build(args.preset, args.dtype, args.shard, src)
        files = sorted(f for f in os.listdir(src) if f.endswith(".safetensors"))
        size = sum(os.path.getsize(os.path.join(src, f)) for f in files)
        print(f"{args.preset}: {params:,} params, {args.dtype}, {len(files)} shards, {size / 2**20:.0f} MiB "
              f"(built in {time.perf_counter() - start:.0f}s)")
        rows = []
        for step in ("transformers", "import", "foundry_load", "export"):
            out = subprocess.run([sys.executable, __file__, "--dtype", args.dtype, "--measure", step, src, work],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        check_round_trip(src, os.path.join(work, "export"))
        print(f"{'step':<14} {'seconds':>8} {'anon MB':>8} {'rss MB':>8}   (peaks above the process after imports)")
        for r in rows:
            print(f"{r['step']:<14} {r['seconds']:>8.2f} {r['anon_mb']:>8} {r['rss_mb']:>8}")
        print(f"weights on disk: {size / 2**20:.0f} MiB; export equals the source tensor for tensor: yes")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def check_round_trip(src: str, exported: str) -> None:
    import torch

    from foundry.weights.tensors import TensorReader
    a, b = TensorReader.from_folder(src), TensorReader.from_folder(exported)
    assert sorted(a.names()) == sorted(b.names()), set(a.names()) ^ set(b.names())
    for name in a.names():
        assert torch.equal(a.get(name), b.get(name)), name


if __name__ == "__main__":
    main()
