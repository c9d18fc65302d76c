"""Search over configs: the worker pool that runs trials as subprocesses (pool.py) and the
statistics that decide whether a difference is real (stats.py). The supervisor (agent/) and
`foundry sweep` / `foundry compare` both build on these two modules."""
