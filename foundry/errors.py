"""The one exception for bad input, and how a command turns it into an exit code.

    raise UserError("baselines/x.yaml: model.n_layer: must be positive, got 0")
    sys.exit(run_command("foundry train", train_main, argv))   # UserError -> one line, exit 2
"""
import sys


class UserError(Exception):
    """Bad input from a person or a file; the message names the file, key or value."""


def run_command(prog: str, function, argv) -> int:
    """`function(argv) -> exit code`, with bad input as one line on stderr and exit code 2,
    and Ctrl-C as exit code 130."""
    try:
        return function(argv) or 0
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
