"""The one exception for bad input, and how a command turns it into an exit code.

    raise UserError("baselines/x.yaml: model.n_layer: must be positive, got 0")
    sys.exit(run_command("foundry train", train_main, argv))   # UserError -> one line, exit 2
    p = ArgumentParser(prog="foundry train")                  # argparse's errors as UserError too
"""
import argparse
import os
import sys

EXIT_BROKEN_PIPE = 141   # what a shell reports for a tool that SIGPIPE ended (128 + 13), as `yes | head`


class UserError(Exception):
    """Bad input from a person or a file; the message names the file, key or value."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a bad option is a UserError (one line, exit 2 through run_command)
    instead of the usage text followed by the error."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def run_command(prog: str, function, argv) -> int:
    """`function(argv) -> exit code`, with bad input as one line on stderr and exit code 2,
    Ctrl-C as exit code 130, and a reader that closed the pipe (`foundry mutate --list | head`) as
    a quiet exit 141."""
    try:
        code = function(argv) or 0
        sys.stdout.flush()   # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # nothing more can reach the reader; flush nowhere
        return EXIT_BROKEN_PIPE
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
