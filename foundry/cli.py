"""The `foundry` command: one dict of subcommand -> function, at the end of this file.

    foundry --help              lists the subcommands (INTERNAL ones, run by other commands, are not)
    foundry --version
    foundry train CONFIG [key=value ...] [--out DIR]
    foundry SUBCOMMAND --help   the options of one

Each subcommand is `main(argv) -> exit code` in the module that owns the capability; it is
imported only when called, so `foundry status` stays fast. Bad input raises UserError:
one line on stderr, exit code 2.
"""
import sys

from foundry.errors import run_command


def _train(argv):
    from foundry.training.cli import train_main
    return train_main(argv)


def _validate(argv):
    from foundry.training.cli import validate_main
    return validate_main(argv)


def _sample(argv):
    from foundry.training.cli import sample_main
    return sample_main(argv)


def _eval(argv):
    from foundry.benchmarks.cli import eval_main
    return eval_main(argv)


def _run(argv):
    from agent.cli import run_main
    return run_main(argv)


def _status(argv):
    from agent.cli import status_main
    return status_main(argv)


def _runs(argv):
    from agent.cli import runs_main
    return runs_main(argv)


def _history(argv):
    from agent.cli import history_main
    return history_main(argv)


def _report(argv):
    from agent.campaign_report import report_main
    return report_main(argv)


def _mutate(argv):
    from foundry.mutate.cli import mutate_main
    return mutate_main(argv)


def _sweep(argv):
    from foundry.search.cli import sweep_main
    return sweep_main(argv)


def _compare(argv):
    from foundry.search.cli import compare_main
    return compare_main(argv)


def _lr_find(argv):
    from foundry.search.cli import lr_find_main
    return lr_find_main(argv)


def _train_rung(argv):
    from foundry.training.rung import rung_train_main
    return rung_train_main(argv)


def _evolve(argv):
    from foundry.search.cli import evolve_main
    return evolve_main(argv)


def _distill(argv):
    from foundry.distill.cli import distill_main
    return distill_main(argv)


def _prune(argv):
    from foundry.prune.cli import prune_main
    return prune_main(argv)


def _data(argv):
    from foundry.data.cli import data_main
    return data_main(argv)


def _zoo(argv):
    from foundry.zoo.cli import zoo_main
    return zoo_main(argv)


def _fuse(argv):
    from foundry.fusion.cli import fuse_main
    return fuse_main(argv)


def _merge(argv):
    from foundry.merge.cli import merge_main
    return merge_main(argv)


def _genetics(argv):
    from foundry.genetics.cli import genetics_main
    return genetics_main(argv)


USAGE = """usage: foundry COMMAND [options]      (foundry COMMAND --help for its options)

Foundry trains small language models, mutates their configs, ranks the variants with
noise-aware statistics and commits the winners to git, unattended.

  foundry run --generations 1 --population 2     a first, short campaign (about 3 minutes)
  foundry train baselines/tiny.yaml              train one config into runs/NAME-HASH
  foundry status                                 what the latest campaign is doing

commands:"""
INTERNAL = {"train-rung"}   # run by `foundry sweep --asha`, not by people: not listed


def _usage() -> int:
    print(USAGE)
    for name, (_, summary) in COMMANDS.items():
        if name not in INTERNAL:
            print(f"  {name:<10} {summary}")
    return 0


def _version() -> int:
    from importlib.metadata import PackageNotFoundError, version
    try:
        print(f"foundry {version('foundry')}")
    except PackageNotFoundError:   # run from a source tree that was never installed
        print("foundry (not installed)")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        code = run_command("foundry", lambda _: _usage(), [])
        return code if argv else 2
    if argv[0] in ("-V", "--version"):
        return run_command("foundry", lambda _: _version(), [])
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        shown = ", ".join(n for n in COMMANDS if n not in INTERNAL)
        print(f"foundry: unknown command {name!r} (valid: {shown}; foundry --help)", file=sys.stderr)
        return 2
    return run_command(f"foundry {name}", COMMANDS[name][0], rest)


COMMANDS = {
    "train": (_train, "train a config; writes summary.json, checkpoint, TensorBoard events"),
    "validate": (_validate, "check a config (with overrides) and print it resolved"),
    "sample": (_sample, "generate text from a trained checkpoint"),
    "eval": (_eval, "score a checkpoint or Hugging Face folder on benchmark tasks"),
    "run": (_run, "the supervisor: mutate, train, rank and promote, unattended"),
    "status": (_status, "what a campaign (or one run folder) is doing now"),
    "runs": (_runs, "query the trials of a campaign's ledger"),
    "history": (_history, "the lineage of promoted baselines, read from git"),
    "report": (_report, "a campaign's plots and page: baseline over time, promotions, effects, compute"),
    "mutate": (_mutate, "write a mutated variant of a baseline config"),
    "sweep": (_sweep, "train variants in parallel (ASHA), rank, optionally promote"),
    "compare": (_compare, "interleaved multi-seed comparison of two configs"),
    "lr-find": (_lr_find, "learning-rate range test"),
    "evolve": (_evolve, "aging evolution over configs (stacked mutations)"),
    "data": (_data, "corpus tools: stats, filter, dedupe, synth (self-instruct), revise (constitution pairs)"),
    "zoo": (_zoo, "presets; Hugging Face Llama / Mistral / Qwen2 / GPT-2 import and export"),
    "fuse": (_fuse, "fuse experts' blocks (any family, any width) with adapters and routers; `fuse report RUN`"),
    "merge": (_merge, "merge models with a mergekit-format recipe (linear, slerp, ties, dare, ...)"),
    "genetics": (_genetics, "evolve model weights (SLERP, mutation, selection) or merge recipes (CMA-ES)"),
    "train-rung": (_train_rung, "train, pausing after N tokens of a longer run (ASHA rungs of foundry sweep)"),
    "distill": (_distill, "distill cache: a teacher's top-k logits for a student's training stream"),
    "prune": (_prune, "prune a run (magnitude, saliency, wanda, N:M, heads/neurons/layers) into a new run"),
}

if __name__ == "__main__":
    sys.exit(main())
