"""Generation memory against context length, per token mixer: full attention (mha), attention with a
window (sliding_window, whose KV cache keeps window - 1 keys), retention and ssm (a constant state).

    python bench/generation_memory.py                       # 4 x 256 wide, batch 4, up to 4096 tokens
    python bench/generation_memory.py --context 1024 --mixers mha,ssm --json

Each mixer runs in its own process (so its resident memory is its own): a GPT of random weights
(memory does not depend on training) reads a random prompt through its caches, --prefill tokens a
call, and before each checkpoint (powers of two from 256 up to --context) decodes the last --decode
tokens one at a time, greedily. At each checkpoint it records
  cache MiB   the bytes of every tensor the caches hold (distinct storages, so a view over a larger
              buffer counts the whole buffer): what the mixer keeps for the next token
  RSS MiB     the process's resident memory then (/proc/self/statm): the cache plus torch itself
  ms/token    the mean wall time of those one-token steps
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MIXERS = {"mha": {"attention": "mha"}, "window": {"attention": "sliding_window"},
          "retention": {"attention": "retention"}, "ssm": {"attention": "ssm"}}


def cache_bytes(caches) -> int:
    storages, stack = {}, list(caches)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        else:  # a tensor
            storage = item.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(name: str, args) -> list[dict]:
    import torch

    from foundry import catalog
    from foundry.model.gpt import GPT
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = {"n_layer": args.layers, "n_embd": args.width, "n_head": args.width // 32, "block_size": args.context,
             "vocab_size": 256, "window": args.window, **MIXERS[name]}
    model = GPT(catalog.from_dict({"model": model, "budget": {"steps": 1}}).model).eval()
    caches = [{} for _ in model.blocks]
    prompt = torch.randint(0, 256, (args.batch, args.context))
    checkpoints = sorted({2 ** p for p in range(8, 31) if 2 ** p <= args.context} | {args.context})
    rows, position = [], 0
    with torch.no_grad():
        for context in checkpoints:
            while position < context - args.decode:  # the prompt, --prefill tokens a call
                step = min(args.prefill, context - args.decode - position)
                model(prompt[:, position:position + step], caches, position)
                position += step
            token, t0 = prompt[:, position:position + 1], time.perf_counter()
            while position < context:  # the last --decode tokens one at a time, greedily
                token = model(token, caches, position)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
                position += 1
            rows.append({"mixer": name, "context": context, "cache_mib": cache_bytes(caches) / 2 ** 20,
                         "rss_mib": rss_bytes() / 2 ** 20,
                         "ms_per_token": 1e3 * (time.perf_counter() - t0) / args.decode})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--context", type=int, default=4096, help="tokens to generate up to (default: 4096)")
    p.add_argument("--window", type=int, default=256, help="sliding_window's window (default: 256)")
    p.add_argument("--layers", type=int, default=4, help="model.n_layer (default: 4)")
    p.add_argument("--width", type=int, default=256, help="model.n_embd, heads of 32 (default: 256)")
    p.add_argument("--batch", type=int, default=4, help="sequences generated at once (default: 4)")
    p.add_argument("--prefill", type=int, default=256, help="prompt tokens a forward call (default: 256)")
    p.add_argument("--decode", type=int, default=32, help="tokens decoded one at a time before each checkpoint (default: 32)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--mixers", default=",".join(MIXERS), help=f"comma-separated, of {', '.join(MIXERS)}")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure this mixer, print JSON
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args)))
        return
    unknown = [m for m in args.mixers.split(",") if m not in MIXERS]
    if unknown:
        p.error(f"--mixers: unknown {unknown} (valid: {', '.join(MIXERS)})")
    rows = []
    for name in args.mixers.split(","):
        print(f"{name}: generating {args.context} tokens ...", file=sys.stderr, flush=True)
        child = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--json"]
        out = subprocess.run([sys.executable, __file__, *child, "--one", name], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{name}: {out.stderr.strip().splitlines()[-1]}")
        rows += json.loads(out.stdout)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'mixer':<10} {'context':>8} {'cache MiB':>10} {'RSS MiB':>9} {'ms/token':>9}")
    for r in rows:
        print(f"{r['mixer']:<10} {r['context']:>8} {r['cache_mib']:>10.2f} {r['rss_mib']:>9.1f} {r['ms_per_token']:>9.2f}")


if __name__ == "__main__":
    main()
