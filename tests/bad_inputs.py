"""The catalogue of bad inputs, by category, and the sandbox they run in: every one must end in
exit code 2 with one line on stderr that names the key, file or value, no traceback, and no file
written. tests/test_bad_input.py runs each through foundry.cli.main; bench/bad_inputs.py runs
each as a `foundry` process and prints the table (input -> exit code -> message).

    sandbox = build_sandbox(tmp_path)               # a trained run, damaged copies, a git repo
    argv = expand(CASES["numbers"][0][0], sandbox)  # "{tiny}" etc. replaced by real paths
    before = snapshot(sandbox["root"]); ...; assert snapshot(sandbox["root"]) == before

A case is (arguments with {placeholders}, text the message must contain). Placeholders: {tiny}
a shrunk tiny.yaml; {run} a trained run folder; {corpus} its text file; {seeds} a JSONL of instructions; {bad_weights} {bad_state} {bad_tokenizer}
copies of it with one file damaged; {resumable} an intact copy to resume; {file} an existing
plain file; {folder} an existing folder; {binary} {latin1} {list_model} broken YAML files;
{genetics} a genetics recipe that starts from a checkpoint that does not exist;
{repo} a git repository with baselines/ (tiny.yaml, dirty.yaml edited since its commit,
untracked.yaml never added, broken.yaml committed but invalid).
"""
from __future__ import annotations

import os
import shutil

DIGITS = "1" + "0" * 400   # an integer literal beyond the float range
TINY_MODEL = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
              "train.batch_size=4", "eval.bytes=2048", "eval.interval=1000"]

CASES = {
    "numbers": [   # non-finite or absurd numbers, in any float or int setting or flag
        ("validate {tiny} train.lr=nan", "train.lr: expected a finite number, got 'nan'"),
        ("train {tiny} train.lr=1e400 --out {root}/out", "train.lr: expected a finite number"),
        (f"train {{tiny}} train.lr={DIGITS} --out {{root}}/out", "train.lr: expected a finite number"),
        ("train {tiny} train.grad_clip=nan --out {root}/out", "train.grad_clip: expected a finite number"),
        ("train {tiny} budget.seconds=nan --out {root}/out", "budget.seconds: expected a finite number"),
        ("validate {tiny} train.weight_decay=-.inf", "train.weight_decay: expected a finite number"),
        (f"validate {{tiny}} model.n_layer={DIGITS}", "model.n_layer: must be in [1, 1e6]"),
        ("validate {tiny} eval.rank.bpb=.nan eval.tasks=[bpb]", "eval.rank.bpb: expected a finite number"),
        ("run --baseline {repo}/baselines/tiny.yaml --alpha nan", "--alpha: expected a finite number, got nan"),
        ("run --baseline {repo}/baselines/tiny.yaml --min-delta inf", "--min-delta: expected a finite number"),
        ("sample {run} --temperature nan", "--temperature: must be in [0, 100]"),
        ("eval {run} --timeout nan", "--timeout: must be in (0, 86400]"),
        ("lr-find {tiny} --min-lr nan --out {root}/out", "--min-lr: must be in (0, 1000]"),
        ("sweep lr x2 --baseline {tiny} --eta nan --dir {root}/out", "--eta: must be in (1, 100]"),
        ("train-rung {tiny} train.lr=nan --out {root}/out --stop-at-tokens 100", "train.lr: expected a finite number"),
        ("data stats {corpus} --near nan", "--near: must be in [0, 1], got nan"),
        ("data synth --model {run} --seeds {seeds} --out {root}/o.jsonl --temperature nan",
         "--temperature: must be in [0, 100], got nan"),
        ("data revise --model {run} --prompts {seeds} --out {root}/o.jsonl --top-p inf", "--top-p: must be in (0, 1]"),
    ],
    "sizes": [   # negative or zero sizes and ratios, and models that cannot fit in memory
        ("train {tiny} model.mlp_ratio=-1 --out {root}/out", "model.mlp_ratio: must be in (0, 64], got -1.0"),
        ("train {tiny} train.seed=-1 --out {root}/out", "train.seed: must be in [0, 4294967295], got -1"),
        ("train {tiny} model.n_layer=100000 --out {root}/out", "billion parameters need about"),
        ("validate {tiny} model.n_embd=16384 model.n_head=16 model.n_layer=64", "billion parameters need about"),
        ("validate {tiny} model.n_embd=0", "model.n_embd: must be in [1, 1e6], got 0"),
        ("train {tiny} train.batch_size=0 --out {root}/out", "train.batch_size: must be in [1, 1e7], got 0"),
        ("validate {tiny} model.dropout=1.5", "model.dropout: must be in [0, 1), got 1.5"),
        ("validate {tiny} data.val_fraction=1", "data.val_fraction: must be in (0, 1), got 1.0"),
        ("validate {tiny} model.block_size=-8", "model.block_size: must be in [1, 1e8], got -8"),
        ("validate {tiny} eval.interval=0", "eval.interval: must be in [1, 1e12], got 0"),
        ("validate {tiny} \"model.layers={{'0': {{mlp_ratio: -2}}}}\"", "model.layers (layer 0): model.mlp_ratio"),
        ("compare {tiny} {tiny} --seeds 0 --out {root}/out", "--seeds: must be in [1, 1000], got 0"),
        ("evolve --baseline {tiny} --population 0 --dir {root}/out", "--population: must be in [1, 10000], got 0"),
        ("train-rung {tiny} --out {root}/out --stop-at-tokens -5", "--stop-at-tokens: must be positive, got -5"),
        ("data synth --model {run} --seeds {seeds} --out {root}/o.jsonl -n 0", "-n: must be in [1, 1e7], got 0"),
        ("data synth --model {run} --seeds {seeds} --out {root}/o.jsonl --max-new 0", "--max-new: must be in [1, 1e6]"),
        ("data dedupe {corpus} --num-perm 0", "--num-perm: must be in [16, 4096], got 0"),
        ("data dedupe {corpus} --threshold 1.5", "--threshold: must be in (0, 1], got 1.5"),
    ],
    "devices": [   # unknown device names, and CUDA on a machine or torch build without it
        ("train {tiny} train.device=gpu --out {root}/out", "train.device: unknown device 'gpu'"),
        ("train {tiny} train.device=cuda --out {root}/out", "train.device: cuda is not available"),
        ("train {tiny} train.device=cuda:7 --out {root}/out", "train.device: cuda:7 is not available"),
        ("sample {run} --device cuda", "--device: cuda is not available"),
        ("sample {run} --device tpu", "--device: unknown device 'tpu'"),
        ("eval {run} --tasks bpb --device cuda", "--device: cuda is not available"),
        ("eval {run} --tasks bpb --device gpu:0", "--device: unknown device 'gpu:0'"),
        ("data synth --model {run} --seeds {seeds} --out {root}/o.jsonl --device gpu", "--device: unknown device 'gpu'"),
        ("data revise --model {run} --prompts {seeds} --out {root}/o.jsonl --device cuda",
         "--device: cuda is not available"),
    ],
    "files": [   # unreadable configs, output places that cannot be written, damaged checkpoints
        ("train {binary} --out {root}/out", "binary.yaml: invalid YAML (unacceptable character #x0000"),
        ("validate {latin1}", "latin1.yaml: not a UTF-8 text file"),
        ("validate {list_model}", "model: expected a mapping, got []"),
        ("validate {root}/missing.yaml", "missing.yaml: cannot read"),
        ("merge {root}/missing.yaml --out {root}/merged", "missing.yaml: cannot read"),
        ("merge {binary} --out {root}/merged", "binary.yaml: invalid YAML"),
        ("fuse {root}/missing.yaml --out {root}/fused", "missing.yaml: cannot read"),
        ("genetics {root}/missing.yaml --out {root}/evolved", "missing.yaml: cannot read"),
        ("genetics {binary} --out {root}/evolved", "binary.yaml: invalid YAML"),
        ("genetics {tiny} --out {root}/evolved", "tiny.yaml: name: unknown key (valid: population"),
        ("genetics {genetics} --out {root}/evolved", "genetics.yaml: init.from[0]: nowhere is not a Foundry checkpoint"),
        ("genetics {genetics} --out {file}", "exists and is not a folder"),
        ("distill cache {root}/nothere {tiny} --top-k 4 --out {root}/cache", "nothere: not a Foundry checkpoint"),
        ("prune {root}/nothere --method magnitude --out {root}/pruned", "nothere: not a Foundry checkpoint"),
        ("train {tiny} --out {file}", "exists and is not a folder"),
        ("train {tiny} --out {file}/run", "is a file"),
        ("train {tiny} --out /proc/foundry-run", "cannot write in /proc"),
        ("mutate lr x2 --baseline {tiny} --out {file}", "exists and is not a folder"),
        ("eval {run} --tasks bpb --out {folder}", "is a folder; name the JSON file"),
        ("sample {bad_weights}", "model.safetensors: damaged or truncated weights"),
        ("eval {bad_weights} --tasks bpb", "model.safetensors: damaged or truncated weights"),
        ("sample {bad_tokenizer}", "tokenizer.json: damaged"),
        ("train {bad_state}/config.yaml --out {bad_state} --resume", "state.pt: damaged or from another run"),
        ("train {bad_weights}/config.yaml --out {bad_weights} --resume", "model.safetensors: damaged or truncated"),
        ("train {resumable}/config.yaml model.n_layer=2 --out {resumable} --resume",
         "was trained with other model settings (model.n_layer 1 -> 2)"),
        ("status {root}/no-such-run", "no-such-run: no such run folder"),
        ("status --experiments {folder}", "no campaigns yet"),
        ("history --baseline {file}", "not inside a git repository"),
        ("data stats {root}/missing.txt", "missing.txt does not exist"),
        ("data filter {corpus} --filters '[{{name: exact_dup}}]' --out {folder}", "is a folder; name the JSONL file"),
        ("data dedupe {corpus} --out /proc/unique.jsonl", "cannot write in /proc"),
        ("data synth --model {run} --seeds {file} --out {root}/o.jsonl", "notes.txt:1: invalid JSON"),
        ("data revise --model {bad_weights} --prompts {seeds} --out {root}/o.jsonl", "damaged or truncated weights"),
        ("data revise --model {run} --prompts {seeds} --out {root}/o.jsonl --constitution {binary}", "binary.yaml"),
        ("zoo import {folder} --out {root}/out", "not a Hugging Face model folder"),
        ("zoo export {folder} --out {root}/out", "not a Foundry checkpoint"),
        ("zoo export {run} --out {root}/out", "no Hugging Face family can express this model"),
    ],
    "values": [   # command-line values out of range or of the wrong kind
        ("sample {run} --top-k -3", "--top-k: must not be negative"),
        ("sample {run} --temperature -1", "--temperature: must be in [0, 100]"),
        ("sample {run} --tokens -5", "--tokens: must be at least 1, got -5"),
        ("sample {run} --top-k abc", "argument --top-k: invalid int value: 'abc'"),
        ("prune {run} --method nope --out {root}/pruned", "argument --method: invalid choice: 'nope'"),
        ("distill cache {run} {tiny} --top-k nan --out {root}/cache", "argument --top-k: invalid int value: 'nan'"),
        ("run --baseline {repo}/baselines/tiny.yaml --trial-timeout 1", "--trial-timeout: must be in [30, 1e7]"),
        ("run --baseline {repo}/baselines/tiny.yaml --hours -1", "--hours: must be in (0, 1e6]"),
        ("run --baseline {repo}/baselines/tiny.yaml --keep-checkpoints maybe", "invalid choice: 'maybe'"),
        ("eval {run} --limit -1", "--limit: must be in [0, 1e9], got -1"),
        ("eval {run} --batch-tokens 0", "--batch-tokens: must be in [1, 1e9], got 0"),
        ("train {tiny} --threads -2 --out {root}/out", "train.threads: must be in [0, 4096], got -2"),
        ("runs --limit 0", "--limit: must be at least 1, got 0"),
        ("lr-find {tiny} --steps 1 --out {root}/out", "--steps: must be in [3, 1e6], got 1"),
        ("mutate lr x0 --baseline {tiny} --out {root}/out", "unknown variant 'x0' of mutation 'lr'"),   # any xF > 0 is one
        ("mutate lr xinf --baseline {tiny} --out {root}/out", "unknown variant 'xinf'"),
        ("frobnicate", "unknown command 'frobnicate'"),
        ("report nowhere", "nowhere: no campaign ledger there or under experiments/"),
        ("report nowhere --bins 3", "unrecognized arguments: --bins 3"),
        ("runs --status bogus", "argument --status: invalid choice: 'bogus'"),
        ("runs --gen abc", "argument --gen: invalid int value: 'abc'"),
        ("data filter {corpus} --filters '[{{name: nope}}]'", "data.filters[0]: unknown filter 'nope'"),
        ("data filter {corpus} --filters '[{{name: length, min_chars: -1}}]'", "length.min_chars"),
        ("data filter {corpus}", "give exactly one of --filters and --config"),
        ("data frobnicate", "unknown subcommand 'frobnicate'"),
        ("zoo import {folder} --out {root}/out --dtype fp7", "--dtype: unknown 'fp7'"),
        ("zoo export {run} --out {root}/out --max-shard-size huge", "--max-shard-size: expected a size"),
        ("zoo export {run} --out {root}/out --family nope", "--family: unknown 'nope'"),
        ("zoo frobnicate", "invalid choice: 'frobnicate'"),
        ("genetics {genetics} --out {root}/evolved --workers -1", "--workers: expected 'auto' or a number"),
        ("genetics {genetics} --out {root}/evolved --timeout nan", "--timeout: must be in (0, 1e7], got nan"),
        ("genetics {genetics} --out {root}/evolved --backend slurm", "argument --backend: invalid choice: 'slurm'"),
        ("zoo list --jsn", "unrecognized arguments: --jsn"),
    ],
    "stages": [   # model.stages pipelines that cannot train or generate: the stage and key named
        ("validate {tiny} model.n_layer=2 \"model.stages=[{{name: enc, kind: encoder}}, {{name: dec, kind: decoder}}]\"",
         "model.stages.enc.kind: a non-causal encoder must feed a latent stage right after it"),
        ("train {tiny} \"model.stages=[{{name: dec, kind: decoder, n_layer: 2}}]\" --out {root}/out",
         "model.n_layer: 1, but model.stages hold 2 layers (dec 2)"),
        ("validate {tiny} model.n_layer=1 \"model.stages=[{{name: dec, kind: stack}}]\"", "model.stages.dec.kind: unknown 'stack'"),
        ("validate {tiny} model.n_layer=1 \"model.stages=[{{name: dec, kind: decoder, d_latent: 8}}]\"",
         "model.stages.dec.d_latent: not a key of a decoder stage"),
        ("validate {tiny} model.n_layer=1 \"model.stages=[{{name: dec, kind: decoder, attention: sliding_window}}]\"",
         "model.stages.dec (layer 0): model.attention: sliding_window needs model.window > 0"),
        ("validate {tiny} model.n_layer=1 \"model.stages=[{{name: z, kind: latent, rank: 0}}, {{name: dec, kind: decoder}}]\"",
         "model.stages.z.rank: must be in [1, 1e6], got 0"),
        ("validate {tiny} model.n_layer=1 \"model.stages=[{{name: dec, kind: decoder}}, {{name: z, kind: latent}}]\"",
         "model.stages.z: a latent stage needs a decoder stage after it"),
        ("mutate stage_depth plus1_first --baseline {tiny} --out {root}/out", "no model.stages"),
    ],
    "supervisor": [   # `foundry run` refusals: no campaign folder, no lock, no campaign.yaml left behind
        ("run --baseline {repo}/baselines/missing.yaml", "missing.yaml: cannot read"),
        ("run --baseline {repo}/baselines/untracked.yaml", "baseline is not committed"),
        ("run --baseline {repo}/baselines/dirty.yaml", "baseline file has uncommitted edits"),
        ("run --baseline {repo}/baselines/broken.yaml", "model.n_embd: 30 is not divisible"),
        ("run --baseline {repo}/baselines/tiny.yaml --population 0", "--population: must be in [1, 10000], got 0"),
        ("run --baseline {repo}/baselines/tiny.yaml --workers abc", "--workers: expected 'auto' or a number"),
        ("run --baseline {repo}/baselines/tiny.yaml --generations 0", "--generations: must be at least 1"),
        ("run --baseline {repo}/baselines/tiny.yaml --campaign ../x", "--campaign '../x': use letters"),
        ("run --baseline {repo}/baselines/tiny.yaml --experiments {file}", "is a file"),
    ],
}


def expand(template: str, sandbox: dict) -> list[str]:
    import shlex
    return shlex.split(template.format(**sandbox))


def snapshot(root: str) -> dict:
    """Every file and folder under `root` -> (size, mtime_ns): what a refused command must not change."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            stat = os.lstat(path)
            out[os.path.relpath(path, root)] = (stat.st_size if name in files else 0, stat.st_mtime_ns)
    return out


def build_sandbox(root: str) -> dict:
    """The files the cases name, under `root`; trains one tiny run (about a second) on a small corpus."""
    from foundry import catalog
    from foundry.training.loop import train
    from tests.agent.agent_fixtures import make_repo, tiny_baseline

    root = os.path.abspath(os.fspath(root))
    os.makedirs(root, exist_ok=True)
    repo = make_repo(os.path.join(root, "repo"), tiny_baseline())
    baselines = os.path.join(root, "repo", "baselines")
    with open(os.path.join(baselines, "dirty.yaml"), "w") as f:
        f.write("name: dirty\nbudget:\n  steps: 3\n")
    with open(os.path.join(baselines, "broken.yaml"), "w") as f:
        f.write("name: broken\nmodel:\n  n_embd: 30\n  n_head: 4\nbudget:\n  steps: 3\n")
    repo.index.add(["baselines/dirty.yaml", "baselines/broken.yaml"])
    repo.index.commit("more baselines")
    with open(os.path.join(baselines, "dirty.yaml"), "a") as f:
        f.write("# edited since\n")
    with open(os.path.join(baselines, "untracked.yaml"), "w") as f:
        f.write("name: untracked\nbudget:\n  steps: 3\n")

    text_file = os.path.join(root, "corpus.txt")
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "cat"]
    with open(text_file, "w") as f:
        f.writelines(" ".join(words[(i * 7 + j * 3) % 10] for j in range(12)) + "\n" for i in range(600))
    tiny = os.path.join(root, "tiny.yaml")
    shutil.copy(os.path.join(baselines, "tiny.yaml"), tiny)
    with open(tiny, "a") as f:
        f.write(f"data:\n  source: {text_file}\n")
    run = os.path.join(root, "run")
    train(catalog.load(tiny, [*TINY_MODEL, "budget.steps=3"]), run, log=lambda *a: None)
    paths = {"root": root, "repo": os.path.join(root, "repo"), "tiny": tiny, "run": run, "corpus": text_file}
    for name in ("bad_weights", "bad_state", "bad_tokenizer", "resumable"):
        paths[name] = os.path.join(root, name)
        shutil.copytree(run, paths[name])
    weights = os.path.join(paths["bad_weights"], "checkpoint", "model.safetensors")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)   # a copy cut short
    with open(os.path.join(paths["bad_state"], "checkpoint", "state.pt"), "wb") as f:
        f.write(b"\x80\x04not a torch file")
    with open(os.path.join(paths["bad_tokenizer"], "checkpoint", "tokenizer.json"), "w") as f:
        f.write('{"kind": "byte"')
    files = {"file": ("notes.txt", b"a plain file\n"), "binary": ("binary.yaml", b"\x00\x01\x02model: 1\x00"),
             "latin1": ("latin1.yaml", "name: caf\xe9\n".encode("latin-1")),
             "list_model": ("list.yaml", b"model: []\n"),
             "genetics": ("genetics.yaml", b"fitness: {name: val_bpb}\ninit: {from: nowhere}\n"),
             "seeds": ("seeds.jsonl", b'{"instruction": "Name a colour."}\n{"instruction": "Count to three."}\n')}
    for key, (name, data) in files.items():
        paths[key] = os.path.join(root, name)
        with open(paths[key], "wb") as f:
            f.write(data)
    paths["folder"] = os.path.join(root, "a_folder")
    os.makedirs(paths["folder"])
    return paths
