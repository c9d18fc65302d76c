"""Running trials: the worker pool (pool.py: one trial per worker, each its own process group with
a timeout), the per-worker preloader and its fork server (preloader.py, forkserver.py), and the
loop that keeps every worker busy (driver.py). Used by the supervisor (agent/) and by search/."""
