"""A LoRA fine-tuning campaign of the supervisor on an imported model: what it promoted.

    FOUNDRY_DATA=../shared/data python bench/zoo_lora_campaign.py              # ~10 min on 2 idle cores
    FOUNDRY_DATA=../shared/data python bench/zoo_lora_campaign.py --generations 2 --pretrain-tokens 100000

1. Pretrains a small Llama-shaped model (2 layers, width 64, GQA, SwiGLU, a 512-token BPE) on the
   built-in corpus (Python sources), exports it with `foundry zoo export` (a Hugging Face Llama
   folder), and imports that folder back with `foundry zoo import`: the imported small model.
2. Writes a fine-tuning baseline in a fresh git repository: `train.init_from` the import, LoRA rank 4,
   tiny Shakespeare as data (a new domain), the checkpoint's tokenizer.
3. Runs `foundry run` for a few generations with a proposer that draws from the LoRA mutations of
   the mutation registry (lora_rank, lora_alpha, lora_dropout, and lr), and prints every trial, the
   decisions and the promotions (git log) with their numbers.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
LORA_MUTATIONS = ("lora_rank", "lora_alpha", "lora_dropout", "lr")


def foundry(*args, cwd=None, check=True):
    result = subprocess.run([sys.executable, "-m", "foundry.cli", *map(str, args)], cwd=cwd or REPO,
                            capture_output=True, text=True)
    if check and result.returncode:
        raise SystemExit(f"foundry {' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def propose_lora() -> None:
    """proposer.command: the campaign's state as JSON on stdin -> YAML variants of the baseline,
    each one LoRA mutation (or lr) from foundry.mutate, none tried before."""
    from agent.proposer import change_summary
    from foundry import catalog
    from foundry.config import to_dict
    from foundry.errors import UserError
    from foundry.mutate import MUTATIONS, apply
    state = json.load(sys.stdin)
    baseline = catalog.from_dict(state["baseline"]["config"])
    tried = {d["mutation"] for d in state["decisions"]} | {r["mutation"] for r in state["leaderboard"]}
    rng = random.Random(len(state["decisions"]))
    options = [(t, v) for t in LORA_MUTATIONS for v in MUTATIONS[t][1]]
    rng.shuffle(options)
    out = []
    for mutation_type, variant in options:
        try:
            child = apply(baseline, mutation_type, variant)
        except UserError:
            continue  # does not apply (e.g. a no-op) or refused
        summary = change_summary(baseline, child)  # what the ledger records for a proposer variant
        if summary not in tried and len(out) < 2:
            tried.add(summary)
            out.append(yaml.safe_dump({"train": to_dict(child)["train"]}))
    print("---\n".join(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--population", type=int, default=2)
    p.add_argument("--pretrain-tokens", type=int, default=200_000)
    p.add_argument("--finetune-tokens", type=int, default=30_000)
    p.add_argument("--work", help="folder for everything (default: a new temporary one, kept)")
    p.add_argument("--propose", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.propose:
        return propose_lora()
    data = os.environ.get("FOUNDRY_DATA")
    if not data:
        raise SystemExit("set FOUNDRY_DATA to the shared data folder (tiny Shakespeare)")
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="zoo-campaign-"))
    os.makedirs(work, exist_ok=True)
    pretrain, hf, imported = (os.path.join(work, n) for n in ("pretrain", "hf", "imported"))
    if not os.path.exists(imported):
        print(f"1. pretraining a small Llama-shaped model ({args.pretrain_tokens:,} tokens of Python sources)")
        foundry("train", os.path.join(REPO, "baselines", "tiny.yaml"), "model.attention=gqa", "model.n_kv_head=2",
                "model.n_layer=2", "model.n_embd=64", "model.block_size=64", "model.activation=swiglu",
                "model.tie_embeddings=false", "data.tokenizer=bpe", "train.lr=3e-3",
                f"budget.tokens={args.pretrain_tokens}", "--out", pretrain)
        print("   " + foundry("zoo", "export", pretrain, "--out", hf).stdout.strip().splitlines()[-1])
        print("   " + foundry("zoo", "import", hf, "--out", imported).stdout.strip().splitlines()[0])
    repo = os.path.join(work, "repo")
    cfg = yaml.safe_load(open(os.path.join(imported, "config.yaml")))
    cfg.update(name="lora", parent="", mutations=[])
    cfg["train"].update(init_from=imported, lora_rank=4, lora_alpha=8.0, lr=1e-3, min_lr=1e-4, warmup_steps=5,
                        batch_size=8)
    cfg["data"].update(source=os.path.join(data, "tinyshakespeare.txt"))
    cfg["budget"] = {"tokens": args.finetune_tokens}
    cfg["eval"] = {"interval": 1000, "bytes": 16384}
    if not os.path.exists(repo):
        os.makedirs(os.path.join(repo, "baselines"))
        with open(os.path.join(repo, "baselines", "lora.yaml"), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        with open(os.path.join(repo, ".gitignore"), "w") as f:
            f.write("experiments/\n")
        for command in (["init", "-q", "-b", "main"], ["add", "."], ["-c", "user.name=bench", "-c",
                        "user.email=bench@example.invalid", "commit", "-qm", "LoRA fine-tuning baseline"]):
            subprocess.run(["git", *command], cwd=repo, check=True)
    print(f"2. fine-tuning baseline {repo}/baselines/lora.yaml: init_from the import, LoRA r=4 alpha=8, "
          f"lr 1e-3, {args.finetune_tokens:,} tokens of tiny Shakespeare")
    print(f"3. foundry run --generations {args.generations} --population {args.population} (LoRA proposer)")
    foundry("run", "--baseline", "baselines/lora.yaml", "--generations", args.generations, "--population",
                  args.population, "--workers", "2", "--confirm-seeds", "2",
                  "--proposer-command", f"{sys.executable} {os.path.abspath(__file__)} --propose", cwd=repo)
    trials = json.loads(foundry("runs", "--json", cwd=repo).stdout)
    print(f"\n{'gen':>3} {'role':<8} {'variant':<28} {'seed':>5} {'status':<7} {'val_bpb':>8}")
    for t in sorted(trials, key=lambda t: (t["gen"], t["role"] != "screen", t["variant"], t["seed"])):
        metric = f"{t['metric']:.4f}" if t.get("metric") is not None else "-"
        print(f"{t['gen']:>3} {t['role']:<8} {t['variant'][:28]:<28} {t['seed']:>5} {t['status']:<7} {metric:>8}")
    log = os.path.join(repo, "experiments", "lora", "supervisor.log")
    print("\ndecisions (supervisor.log):")
    for line in open(log, encoding="utf-8"):
        if any(word in line for word in (": PROMOTE", ": reject", "near miss", "candidate(s)")):
            print("  " + line.strip())
    history = json.loads(foundry("history", "--json", cwd=repo).stdout)
    print(f"\npromotions in git ({len(history)}):")
    for h in history:
        print(f"  gen {h['generation']}: {h['subject']} (val_bpb {h['before']:.4f} -> {h['after']:.4f})")
    print(f"\nfinal baseline train section: {yaml.safe_load(open(os.path.join(repo, 'baselines', 'lora.yaml')))['train']}")
    print(f"(everything is in {work})")


if __name__ == "__main__":
    main()
