"""What the eval benches score: a Foundry checkpoint, a local Hugging Face folder, or a random-weight model.

Shared by bench/eval_mmlu.py and bench/eval_gsm8k.py (imported from this folder; not a script).
"""
import os

import torch

from foundry import catalog
from foundry.benchmarks.targets import FoundryLM, load_target, resolve_device
from foundry.data import ByteTokenizer
from foundry.model.gpt import GPT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = {"tiny": {}, "gpt2-small": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024}}


def add_target_args(parser) -> None:
    parser.add_argument("--checkpoint", help="a Foundry run dir or checkpoint folder")
    parser.add_argument("--hf", help="a local Hugging Face causal-LM folder")
    parser.add_argument("--preset", default="tiny", choices=list(PRESETS), help="random-weight model shape")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    parser.add_argument("--data", default=None, help="data folder (default $FOUNDRY_DATA)")


def build_lm(args):
    """Applies --threads and --device (resolved in place), then loads or builds the model."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    if args.checkpoint or args.hf:
        lm = load_target(args.checkpoint or args.hf, device=args.device, kind="foundry" if args.checkpoint else "hf")
    else:
        cfg = catalog.load(os.path.join(REPO, "baselines", "tiny.yaml"),
                          [f"model.{k}={v}" for k, v in PRESETS[args.preset].items()] + ["model.vocab_size=256"])
        torch.manual_seed(0)
        lm = FoundryLM(GPT(cfg.model), ByteTokenizer(), cfg, device=args.device)
    lm.batch_tokens = args.batch_tokens
    return lm


def describe(lm, args) -> str:
    params = sum(t.numel() for t in lm.model.parameters())
    return (f"model: {type(lm).__name__} {args.checkpoint or args.hf or args.preset}, {params / 1e6:.2f}M params, "
            f"context {lm.block_size} tokens, device {args.device}, torch threads {torch.get_num_threads()}, "
            f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
