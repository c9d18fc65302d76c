"""`python -m foundry.mutate TYPE VARIANT [--baseline PATH] [--out DIR]` — same as `foundry mutate`."""
import sys

from foundry.cli import main

sys.exit(main(["mutate", *sys.argv[1:]]))
