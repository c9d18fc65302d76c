"""`torchrun --nproc-per-node N -m foundry.train CONFIG [key=value ...] [--out DIR] [--resume]`:
`foundry train` as a module for torchrun (or `python -m foundry.train`, one process).

`foundry train CONFIG --nproc N` starts torchrun itself; this runner is for people who start it
by hand (torchrun --nnodes, a cluster's launcher). It is only a runner: nothing imports it.
Importing it would bind the name foundry.train to this module in place of the public function
foundry.train(cfg, out_dir), so an import raises ImportError and the function stays as it is.
"""
if __name__ != "__main__":
    raise ImportError("foundry/train.py is the runner behind `python -m foundry.train`; "
                      "call the function foundry.train(cfg, out_dir) instead")

import sys

from foundry.training.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
