"""Layer fusion figures: two experts of different families and widths, trained on different corpora,
fused with adapters and routers; val_bpb of each expert and of the fused model on each corpus and on
the mixture, and the router's usage heatmap.

    FOUNDRY_DATA=../shared/data python bench/fusion_bench.py                 # everything, reusing finished runs
    FOUNDRY_DATA=../shared/data python bench/fusion_bench.py --routers pooled token --tokens 600000

Steps, each skipped when its run folder already holds a finished run (so experts train once):
  1. foundry train bench/fusion/expert_gpt2_shakespeare.yaml --out OUT/gpt2_shakespeare
     (GPT-2 style: layernorm, learned positions, tanh GELU, 64 wide, tiny Shakespeare)
  2. foundry train bench/fusion/expert_llama_python.yaml --out OUT/llama_python
     (Llama style: rmsnorm, rope, SwiGLU, grouped KV heads, 96 wide, the built-in Python corpus)
  3. per router kind R: foundry fuse bench/fusion/recipe.yaml router.kind=R budget.tokens=N
     experts.python=OUT/llama_python experts.shakespeare=OUT/gpt2_shakespeare --out OUT/fused_R
  4. foundry fuse report OUT/fused_R  (the heatmap: OUT/fused_R/fusion_usage.png)
  5. the control (skip with --no-control): foundry fuse bench/fusion/control_python_adapters.yaml
     experts.python=OUT/llama_python --out OUT/control_python: the Python expert's blocks alone with
     the same adapters, router, mixture and tokens, so the table shows what the second expert adds
     beyond what adapters alone learn on the mixture
Then every model is scored by the fusion objective's evaluate (the fixed validation slices of each
corpus, the trainer's metric; the mixture is their mean, the recipe's weights being equal) and the
table is printed and written to OUT/fusion_bench.json. All with the byte tokenizer, on this CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERTS = {"shakespeare": ("gpt2_shakespeare", "bench/fusion/expert_gpt2_shakespeare.yaml"),
           "python": ("llama_python", "bench/fusion/expert_llama_python.yaml")}


def finished(run: str) -> bool:
    try:
        with open(os.path.join(run, "summary.json")) as f:
            return json.load(f).get("status") == "done"
    except (OSError, ValueError):
        return False


def step(argv: list[str], run: str) -> None:
    """Run a foundry command (printed as run) unless `run` already finished."""
    if finished(run):
        print(f"reusing {run}")
        return
    print("$ " + " ".join(argv), flush=True)
    started = time.time()
    subprocess.run(argv, cwd=ROOT, check=True)
    print(f"  ({time.time() - started:.0f} s)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/fusion-bench")
    p.add_argument("--routers", nargs="+", default=["pooled", "token"])
    p.add_argument("--tokens", type=int, default=600_000, help="fusion training tokens")
    p.add_argument("--recipe", default="bench/fusion/recipe.yaml")
    p.add_argument("--no-control", dest="control", action="store_false",
                   help="skip the control run (the Python expert alone, adapters trained on the mixture)")
    args = p.parse_args()
    if not os.environ.get("FOUNDRY_DATA"):
        sys.exit("set FOUNDRY_DATA to the shared data folder (tiny Shakespeare)")
    out = os.path.join(ROOT, args.out)
    runs = {name: os.path.join(out, folder) for name, (folder, _) in EXPERTS.items()}
    for name, (folder, config) in EXPERTS.items():
        step(["foundry", "train", config, "--out", runs[name]], runs[name])
    fused = {}
    for router in args.routers:
        fused[router] = os.path.join(out, f"fused_{router}")
        step(["foundry", "fuse", args.recipe, f"router.kind={router}", f"budget.tokens={args.tokens}",
              f"experts.python={runs['python']}", f"experts.shakespeare={runs['shakespeare']}",
              "--out", fused[router]], fused[router])
        print("$ foundry fuse report " + fused[router], flush=True)
        subprocess.run(["foundry", "fuse", "report", fused[router]], cwd=ROOT, check=True)
    controls = {}
    if args.control:
        controls["python + adapters (control)"] = os.path.join(out, "control_python")
        step(["foundry", "fuse", "bench/fusion/control_python_adapters.yaml", f"budget.tokens={args.tokens}",
              f"experts.python={runs['python']}", "--out", controls["python + adapters (control)"]],
             controls["python + adapters (control)"])

    import torch

    import foundry
    from foundry.fusion import load_recipe
    from foundry.fusion.objective import FusionObjective
    cfg = load_recipe(os.path.join(ROOT, args.recipe), [f"experts.python={runs['python']}",
                                                        f"experts.shakespeare={runs['shakespeare']}"])
    objective = FusionObjective(cfg, torch.device("cpu"))
    table = {}
    rows = [(f"expert {n}", r) for n, r in runs.items()] + [(f"fused ({r})", f) for r, f in fused.items()]
    for label, run in rows + list(controls.items()):
        model, _, _ = foundry.load(run)
        table[label] = {k.removeprefix("val_bpb/"): v for k, v in objective.evaluate(model).items() if "bpb" in k}
        table[label]["mixture"] = table[label].pop("val_bpb")
        with open(os.path.join(run, "summary.json")) as f:
            summary = json.load(f)
        table[label].update(train_tokens=summary["train_tokens"], wall_s=round(summary["wall_s"]),
                            peak_mem_mb=summary["peak_mem_mb"])
    columns = ["shakespeare", "python", "mixture"]
    print(f"\nval_bpb (byte tokenizer; fixed validation slices of the first {cfg.eval.bytes} "
          f"bytes of each corpus)")
    print(f"{'model':<30}" + "".join(f"{c:>13}" for c in columns) + f"{'train tokens':>14}{'wall s':>8}{'peak MB':>9}")
    for label, row in table.items():
        print(f"{label:<30}" + "".join(f"{row[c]:>13.4f}" for c in columns)
              + f"{row['train_tokens']:>14,}{row['wall_s']:>8}{row['peak_mem_mb']:>9.0f}")
    for router, run in fused.items():
        with open(os.path.join(run, "fusion_usage.json")) as f:
            usage = json.load(f)["usage"]
        print(f"\nusage, fused ({router}) — share of each layer's output, per corpus "
              f"(heatmap: {os.path.relpath(run, ROOT)}/fusion_usage.png)")
        for source, layers in usage.items():
            print(f"  {source:<12}" + "   ".join(
                f"layer {i}: " + ", ".join(f"{e} {u:.2f}" for e, u in layer.items()) for i, layer in enumerate(layers)))
    with open(os.path.join(out, "fusion_bench.json"), "w") as f:
        json.dump({"val_bpb": table, "routers": list(fused)}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
