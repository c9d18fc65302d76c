"""The loop shared by ASHA, sweeps and evolution: keep every worker of the pool busy.

    drive(pool, next_spec, on_finished, save)

`next_spec()` returns the next TrialSpec (or None when nothing can start now); each finished
trial goes to `on_finished(spec, result)`; `save()` persists the caller's state after every
change, so a search killed at any moment restarts where it was. On Ctrl-C or an error, running
trials are stopped (their process groups killed) and NOT reported: they stay "running" in the
saved state and run again, from their checkpoints, when the search restarts.
"""
from __future__ import annotations

import time


def drive(pool, next_spec, on_finished, save, log=print, poll_s: float = 0.2) -> None:
    try:
        while True:
            while pool.free_slots() > 0:
                spec = next_spec()
                if spec is None:
                    break
                pool.submit(spec)
            save()
            for event in pool.poll():
                if event.kind == "started":
                    log(f"  start  {event.spec.trial_id} on {event.worker.name}")
                elif event.result is not None:
                    on_finished(event.spec, event.result)
                    save()
            if not pool.busy():
                spec = next_spec()
                if spec is None:
                    break
                pool.submit(spec)
                continue
            time.sleep(poll_s)
    finally:
        if pool.busy():
            log("  stopping running trials; they resume when the search is restarted")
        pool.close()  # stops running trials and the pool's preloader
        save()
