"""ASHA rung logic with a fake objective: promotions, draining, confirmation, persistence."""
import json

import pytest

from foundry.search.asha import AshaSearch, rung_budgets


def test_rung_budgets():
    assert rung_budgets(1, 3, 27) == [1, 3, 9, 27]
    assert rung_budgets(10, 3, 100) == [10, 30, 100]  # 90 would sit right below 100
    assert rung_budgets(307200 // 27, 3, 307200) == [11377, 34131, 102393, 307200]
    assert rung_budgets(100, 3, 100) == [100]
    with pytest.raises(ValueError):
        rung_budgets(10, 1, 100)


def _trials(n, seed=100):
    return [{"id": f"t{i:02d}", "label": "baseline" if i == 0 else f"v{i}", "config": f"c{i}.yaml", "seed": seed}
            for i in range(n)]


def quality(trial_id):
    """Fixed ranking, t07 best: the objective falls with budget towards this asymptote."""
    i = int(trial_id[1:3])
    return 1.0 + abs(i - 7) * 0.1


def objective(job):
    return quality(job["trial"]) + 1.0 / job["budget"] + 0.001 * (job["seed"] % 3)


def simulate(search, workers=3, stop_after_reports=None):
    """Event-driven: a job takes time proportional to its new tokens; returns jobs still running."""
    clock, running, reports = 0.0, [], 0
    done_tokens = {}
    while True:
        while len(running) < workers:
            job = search.next_job()
            if job is None:
                break
            cost = job["budget"] - done_tokens.get(job["run"], 0)
            running.append((clock + cost + 0.01 * len(running), job))
        if not running:
            return []
        running.sort(key=lambda r: r[0])
        clock, job = running.pop(0)
        done_tokens[job["run"]] = job["budget"]
        fails = job["trial"] == "t03"
        search.report(job["id"], None if fails else objective(job),
                      {"train_tokens": job["budget"], "train_flops": 6.0 * job["budget"]})
        reports += 1
        if stop_after_reports and reports >= stop_after_reports:
            return [job for _, job in running]


def test_asha_promotes_the_best_confirms_and_saves_compute():
    n, budgets = 12, rung_budgets(1, 3, 27)
    search = AshaSearch(budgets, 3, _trials(n), top_k=2, seeds=3)
    simulate(search)
    assert search.finished()
    board = {row["trial"]: row for row in search.leaderboard()}
    assert board["t07"]["rung"] == 3  # the best trial reached the full budget
    reached = [sum(row["rung"] >= k for row in board.values()) for k in range(4)]
    assert reached[0] == n and reached[0] > reached[1] > reached[2] >= reached[3] >= 1
    assert board["t03"]["objective"] is None and board["t03"]["rung"] == 0  # failed: never promoted
    rows = search.confirmation()
    assert {r["trial"] for r in rows} >= {"t07", "t00"}  # top-k plus the baseline
    assert all(r["n"] == 3 for r in rows)
    assert search.winner()["trial"] == "t07"
    full_training = n * 27 * 6.0
    rung_flops = sum(j["flops"] for j in search.jobs if j["phase"] == "rung")
    assert rung_flops < full_training / 4 and search.total_flops() < full_training
    ids = [j["id"] for j in search.jobs]
    assert len(ids) == len(set(ids))


def test_promoted_trial_continues_its_own_run():
    search = AshaSearch(rung_budgets(1, 3, 9), 3, _trials(6), top_k=1, seeds=1)
    simulate(search, workers=1)
    promoted = [j for j in search.jobs if j["phase"] == "rung" and j["rung"] > 0]
    assert promoted and all(j["run"] == j["trial"] for j in promoted)
    # incremental compute: a continuation is charged only for its new tokens
    for job in promoted:
        assert job["tokens"] == job["budget"] - search.budgets[job["rung"] - 1]


def test_restarted_search_keeps_its_rungs():
    budgets = rung_budgets(1, 3, 27)
    search = AshaSearch(budgets, 3, _trials(10), top_k=2, seeds=2)
    in_flight = simulate(search, workers=3, stop_after_reports=9)
    assert in_flight
    finished_before = {j["id"]: j["objective"] for j in search.jobs if j["status"] != "running"}
    restored = AshaSearch.from_dict(json.loads(json.dumps(search.to_dict())))
    # the jobs that were running come back first, unchanged
    assert [restored.next_job()["id"] for _ in in_flight] == [j["id"] for j in in_flight]
    restored.requeue = [j for j in restored.jobs if j["status"] == "running"]
    simulate(restored)
    after = {j["id"]: j["objective"] for j in restored.jobs}
    assert all(after[k] == v for k, v in finished_before.items())  # nothing re-run or lost
    assert len(after) == len(restored.jobs)
    reference = AshaSearch(budgets, 3, _trials(10), top_k=2, seeds=2)
    simulate(reference)
    assert restored.winner()["trial"] == reference.winner()["trial"] == "t07"


def test_single_rung_is_plain_multi_seed_training():
    search = AshaSearch([27], 3, _trials(4), top_k=4, seeds=2, always_confirm=())
    simulate(search)
    assert len(search.jobs) == 7 and all(j["budget"] == 27 for j in search.jobs)  # t03 fails: no 2nd seed
    assert [r["trial"] for r in search.confirmation()][:1] == ["t02"]  # nearest to t07 among t00..t03


def test_extra_seeds_are_issued_seed_major():
    """Every trial's 2nd seed before any trial's 3rd: a search cut short compares like with like."""
    search = AshaSearch([27], 3, _trials(3), top_k=3, seeds=3, always_confirm=())
    order = []
    while (job := search.next_job()) is not None:
        order.append((job["trial"], job["seed"]))
        search.report(job["id"], objective(job), {"train_tokens": 27, "train_flops": 162.0})
    assert [seed for _, seed in order] == [100] * 3 + [101] * 3 + [102] * 3
    assert sorted(order) == [(f"t{i:02d}", 100 + s) for i in range(3) for s in range(3)]
