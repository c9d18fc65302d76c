"""Running trials: backends.py opens a pool of either backend; the local worker pool (pool.py:
trials of one or several workers, each its own process group with a timeout), the per-worker
preloader and its fork server (preloader.py, forkserver.py), the Ray backend (ray_pool.py, and
ray_trial.py on the nodes), and the loop that keeps every worker busy (driver.py). Used by the
supervisor (agent/) and by search/."""
