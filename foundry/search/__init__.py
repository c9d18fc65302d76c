"""Search over configs: sweeps with ASHA (sweep.py, asha.py, ledger.py), aging evolution
(evolution.py), interleaved comparison (compare.py), learning-rate range tests (lr_find.py),
and the statistics that decide whether a difference is real (stats.py). Trials run on the
worker pool of foundry.runner; promotions go through foundry.lineage."""
