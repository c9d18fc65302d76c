"""Do Foundry's merge methods give mergekit 0.1.5's tensors? The same recipes, run by both on tiny
random Llama folders (built with transformers here), the largest tensor difference per method.

    python bench/merge_vs_mergekit.py --mergekit-yaml /path/to/venv/bin/mergekit-yaml [--json]

mergekit is LGPL and not a dependency: install it into a separate virtual environment
(`pip install mergekit==0.1.5`) and point --mergekit-yaml at its command; without it the script
says so and stops. Random methods (dare_*, della*) draw masks from different generators, so they
are compared at density 1 (the masks keep everything: the rest of the method must agree) and, at
density 0.5, by the fraction of each task vector they keep. Magnitude trims (ties, breadcrumbs)
can differ where two entries of a task vector have the same |x| at the density cut: Foundry breaks
the tie by position (a stable sort, the same on every device), mergekit by torch's unstable argsort.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from foundry.merge import merge  # noqa: E402
from foundry.weights.tensors import TensorReader  # noqa: E402


def tiny_llama(folder: str, seed: int, base: str | None = None) -> str:
    """A random 4-layer Llama (or `base` plus noise), saved as transformers does, with a tokenizer."""
    import transformers as tf
    from tests.zoo.hf_models import tiny_tokenizer
    torch.manual_seed(seed)
    if base is None:
        config = tf.LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=160,
                                num_hidden_layers=4, vocab_size=320, max_position_embeddings=128,
                                tie_word_embeddings=False)
        model = tf.LlamaForCausalLM(config)
    else:
        model = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(folder)
    tf.PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer(), bos_token="<s>", eos_token="</s>").save_pretrained(folder)
    return folder


def recipes(m: dict) -> dict:
    """name -> recipe (mergekit's format; nothing Foundry-only in it)."""
    three = lambda params: [{"model": m[k], "parameters": params} for k in ("a", "b", "c")]  # noqa: E731
    gta = lambda method, params, top=None: {"merge_method": method, "base_model": m["base"], "models": three(params),  # noqa: E731
                                            "dtype": "float32", **({"parameters": top} if top else {})}
    return {
        "linear": {"merge_method": "linear", "dtype": "float32", "models": [
            {"model": m["a"], "parameters": {"weight": 0.2}}, {"model": m["b"], "parameters": {"weight": [0.5, 1.0]}}]},
        "slerp": {"merge_method": "slerp", "base_model": m["base"], "dtype": "float32", "slices": [{"sources": [
            {"model": m["base"], "layer_range": [0, 4]}, {"model": m["a"], "layer_range": [0, 4]}]}],
            "parameters": {"t": [{"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
                                 {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]}, {"value": 0.5}]}},
        "task_arithmetic": gta("task_arithmetic", {"weight": 0.7}, {"lambda": 0.8}),
        "ties": gta("ties", {"weight": 1.0, "density": 0.4}),
        "ties (weights, no normalize)": gta("ties", {"weight": [0.3, 1.0], "density": [0.2, 0.8]}, {"normalize": False}),
        "breadcrumbs": gta("breadcrumbs", {"weight": 1.0, "density": 0.8, "gamma": 0.05}),
        "breadcrumbs_ties": gta("breadcrumbs_ties", {"weight": 1.0, "density": 0.8, "gamma": 0.05}),
        "model_stock": {"merge_method": "model_stock", "base_model": m["base"], "dtype": "float32",
                        "models": [{"model": m[k]} for k in ("a", "b", "c")]},
        "passthrough": {"merge_method": "passthrough", "dtype": "float32", "slices": [
            {"sources": [{"model": m["a"], "layer_range": [0, 3]}]},
            {"sources": [{"model": m["b"], "layer_range": [1, 4]}]}]},
        **{f"{name} (density 1)": gta(name, {"weight": 0.6, "density": 1.0})
           for name in ("dare_linear", "dare_ties", "della", "della_linear")},
        **{f"{name} (density 0.5)": gta(name, {"weight": 1.0, "density": 0.5, **({"epsilon": 0.1} if "della" in name else {})})
           for name in ("dare_linear", "dare_ties", "della", "della_linear")},
    }


def tensors(folder: str) -> dict:
    reader = TensorReader.from_folder(folder)
    return {n: reader.get(n).float() for n in reader.names()}


def kept_fraction(out: dict, base: dict) -> float:
    """The fraction of entries the merge changed from the base (what a random drop kept)."""
    changed = sum(int((out[n] != base[n]).sum()) for n in base)
    return changed / sum(t.numel() for t in base.values())


def compare(name: str, ours: str, theirs: str, base: dict) -> dict:
    a, b = tensors(ours), tensors(theirs)
    row = {"method": name, "tensors": len(a), "same_names": sorted(a) == sorted(b)}
    if not row["same_names"]:
        row["only_in_one"] = sorted(set(a) ^ set(b))[:3]
        return row
    row["max_abs_diff"] = max(float((a[n] - b[n]).abs().max()) for n in a)
    row["entries_differing"] = sum(int((a[n] != b[n]).sum()) for n in a)
    row["entries"] = sum(t.numel() for t in a.values())
    row["max_abs_value"] = max(float(b[n].abs().max()) for n in b)
    row["layers"] = [json.load(open(os.path.join(f, "config.json")))["num_hidden_layers"] for f in (ours, theirs)]
    if "density 0.5" in name:
        row["kept_fraction"] = [round(kept_fraction(x, base), 4) for x in (a, b)]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mergekit-yaml", default=shutil.which("mergekit-yaml"), help="mergekit's command")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", help="keep the models and outputs in this folder")
    args = parser.parse_args()
    if not args.mergekit_yaml or not os.path.exists(args.mergekit_yaml):
        print("mergekit-yaml not found: install mergekit==0.1.5 in a separate venv and pass --mergekit-yaml")
        return 1
    root = args.keep or tempfile.mkdtemp(prefix="merge-vs-mergekit-")
    os.makedirs(root, exist_ok=True)
    models = {"base": tiny_llama(os.path.join(root, "base"), 0)}
    for i, key in enumerate("abc"):
        models[key] = tiny_llama(os.path.join(root, key), i + 1, models["base"])
    base = tensors(models["base"])
    rows = []
    for i, (name, recipe) in enumerate(recipes(models).items()):
        work = os.path.join(root, f"case{i}")
        os.makedirs(work, exist_ok=True)
        path = os.path.join(work, "recipe.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(recipe, f)
        merge(path, os.path.join(work, "foundry"), seed=0)
        done = subprocess.run([args.mergekit_yaml, path, os.path.join(work, "mergekit"), "--random-seed", "0",
                               "--quiet"], capture_output=True, text=True)
        if done.returncode:
            rows.append({"method": name, "mergekit_error": (done.stderr.strip().splitlines() or ["?"])[-1]})
            continue
        rows.append(compare(name, os.path.join(work, "foundry"), os.path.join(work, "mergekit"), base))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'recipe':<30} {'tensors':>7} {'max |diff|':>11} {'max |x|':>8} {'differing':>15}  notes")
        for r in rows:
            if "mergekit_error" in r:
                print(f"{r['method']:<30} mergekit failed: {r['mergekit_error']}")
                continue
            if not r["same_names"]:
                print(f"{r['method']:<30} tensor names differ: {r['only_in_one']}")
                continue
            notes = f"layers {r['layers'][0]}/{r['layers'][1]}"
            if "kept_fraction" in r:
                notes += f"; kept fraction foundry {r['kept_fraction'][0]} mergekit {r['kept_fraction'][1]} (masks differ by design)"
            differing = f"{r['entries_differing']}/{r['entries']}"
            print(f"{r['method']:<30} {r['tensors']:>7} {r['max_abs_diff']:>11.3g} {r['max_abs_value']:>8.3g} "
                  f"{differing:>15}  {notes}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
