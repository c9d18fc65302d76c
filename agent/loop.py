"""The supervisor loop behind `foundry run`: propose, train, rank, confirm, promote, repeat.

    sup = Supervisor(repo, "baselines/tiny.yaml", "experiments/tiny", settings, view)
    sup.run(generations=3)            # or hours=8, or neither: forever; returns an exit code

Each generation is a small state machine kept in the ledger, so a supervisor killed anywhere
resumes where it was: screen (candidates + the baseline, same seed: this only chooses) ->
confirm (the best candidate and the baseline on k fresh seeds, one more while the sequential
test is unclear; agent/decide.py) -> transfer (optional: both at a larger scale) -> promote
(intent recorded, then one git commit) -> cleanup (checkpoints of discarded variants deleted)
-> done. Every candidate trains the baseline's tokens or FLOPs (agent/compute.py). Trials run
as subprocesses on the pool of search.backend (foundry.runner.backends: this machine's workers
or a Ray cluster; a test may pass its own `pool`); this process is the ledger's only writer.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import asdict

import git

from agent import code, compute, learned, proposer, transfer
from agent.decide import NO_NOISE_CONTROL, improvement, judge, usable
from agent.ledger import Ledger
from agent.report import proposer_input
from agent.view import progress_line
from foundry.catalog import load
from foundry.config import config_hash, diff, save
from foundry.errors import UserError
from foundry.io import read_progress
from foundry.lineage.promotion import (
    Promotion,
    PromotionConflict,
    build_promotion,
    crash_point,
    promote,
)
from foundry.lineage.repo import relpath, running_code
from foundry.runner.backends import open_pool, pool_namespace
from foundry.runner.pool import TrialSpec

NOTHING_TO_TRY = "no new candidates to try"


class Stopped(Exception):
    """SIGINT/SIGTERM arrived: running trials are killed and left for the next start."""


class Supervisor:
    def __init__(self, repo: git.Repo, baseline_path: str, campaign_dir: str, settings, view, poll_s=0.25,
                 pool=None):   # a pool of runner/backends.py; default: opened from settings.search
        self.repo, self.root = repo, repo.working_tree_dir
        self.baseline_path, self.rel = os.path.abspath(baseline_path), relpath(repo, baseline_path)
        self.dir, self.campaign = os.path.abspath(campaign_dir), os.path.basename(os.path.abspath(campaign_dir))
        self.settings, self.view, self.poll_s = settings, view, poll_s
        self.ledger = Ledger(os.path.join(self.dir, "ledger.sqlite"))
        s = settings.search
        self.pool = pool or open_pool(s.backend, settings.worker_count(), devices_per_trial=s.gpus_per_trial,
                                      cpus_per_trial=s.cpus_per_trial, address=s.address or None,
                                      timeout_s=s.trial_timeout_s, cwd=self.root, namespace=pool_namespace(self.dir),
                                      env=code.trial_env(self.root))   # trials run this repository's code
        self.queue_wait_s = 60.0   # how long to wait for queue files when nothing new is left to try
        self.stop_signal = None
        self._fingerprint = (0.0, "")

    def request_stop(self, signum, frame=None) -> None:
        self.stop_signal = signum

    # ---------------------------------------------------------------- the outer loop
    def run(self, generations: int | None = None, hours: float | None = None) -> int:
        self.ledger.set_meta("root", self.root)
        self.pool.warm()   # the preloader imports torch while the ledger and proposals are read
        self.reconcile()
        deadline = time.time() + hours * 3600 if hours else None
        workers = ", ".join(f"{w.name}={w.device}" for w in self.pool.workers)
        self.view.log(f"campaign {self.campaign}: baseline {self.rel}; workers {workers}")
        try:
            while not self.stop_signal:
                last = self.ledger.last_generation()
                if last and last["phase"] != "done":
                    gen = last["gen"]   # an unfinished generation is always finished first
                else:
                    gen = last["gen"] + 1 if last else 1
                    if (generations is not None and gen > generations) or (deadline and time.time() >= deadline):
                        break
                self.advance(gen)
                if self.ledger.decision(gen)["reason"] == NOTHING_TO_TRY:   # wait, do not spin
                    self.view.log(f"nothing new to try; waiting up to {self.queue_wait_s:.0f}s for "
                                  f"experiments/{self.campaign}/queue/")
                    proposer.wait_for_queue(os.path.join(self.dir, "queue"), self.queue_wait_s,
                                            lambda: self.stop_signal)
        except Stopped:
            pass
        finally:
            for event in self.pool.stop():
                self.on_event(event)
            self.pool.close()
        if self.stop_signal:
            self.view.log(f"stopped by {signal.Signals(self.stop_signal).name}; `foundry run` resumes")
            return 130
        self.view.log("budget reached; stopping")
        return 0

    def reconcile(self) -> None:
        """After a crash: trials still running on a cluster are re-attached, no other trainer of ours
        may still write, and the unfinished trials go back to the queue."""
        running = self.ledger.trials(status="running")
        kept = self.pool.recover([(self.trial_spec(t), t["pid"]) for t in running])
        if kept:
            self.view.log(f"resume: re-attached {len(kept)} trial(s) still running: {', '.join(sorted(kept))}")
        requeued = self.ledger.requeue_unfinished(keep=kept)
        if requeued:
            self.view.log(f"resume: re-queued {len(requeued)} unfinished trial(s): "
                          + ", ".join(t["id"] for t in requeued))

    def advance(self, gen: int) -> None:
        if self.ledger.generation(gen) is None:
            self.start_generation(gen)
        phases = {"screen": self.phase_screen, "confirm": self.phase_confirm, "transfer": self.phase_transfer,
                  "promote": self.phase_promote, "cleanup": self.phase_cleanup}
        while (phase := self.ledger.generation(gen)["phase"]) != "done":
            if self.stop_signal:
                raise Stopped
            phases[phase](gen)

    # ---------------------------------------------------------------- generation phases
    def start_generation(self, gen: int) -> None:
        baseline = load(self.baseline_path)
        bhash, seed = config_hash(baseline), self.settings.search.seed + 1000 * gen
        gen_dir = os.path.join(self.dir, f"gen_{gen:04d}")
        proposals = self.collect(baseline, bhash, gen)
        base_path = os.path.join(gen_dir, "baseline.yaml")
        save(baseline, base_path)
        trials = [self.trial_row(gen, "baseline", "screen", base_path, bhash, "", "", seed)] if proposals else []
        for i, p in enumerate(proposals, 1):
            variant = f"v{i:02d}-{proposer.slug(p.label)}"
            cfg = p.cfg
            if cfg.mutations[:len(baseline.mutations)] != baseline.mutations or cfg.mutations == baseline.mutations:
                cfg.mutations = [*baseline.mutations, p.mutation]
            cfg.name, cfg.parent = f"{baseline.name}-{variant}", f"{baseline.name}@{bhash}"
            path = os.path.join(gen_dir, f"{variant}.yaml")
            save(cfg, path)
            trials.append(self.trial_row(gen, variant, "screen", path, config_hash(cfg), cfg.parent, p.mutation, seed))
        self.ledger.start_generation(gen, bhash, self.rel, seed, self.fingerprint(), trials)
        for p in proposals:
            if p.queue_file and os.path.exists(p.queue_file):
                os.unlink(p.queue_file)   # consumed: the ledger now holds it
        self.view.log(f"gen {gen}: baseline {baseline.name}@{bhash}, seed {seed}, {len(proposals)} candidate(s): "
                      + ", ".join(f"{p.mutation} [{p.source}]" for p in proposals))
        for p in proposals:
            if p.note:
                self.view.log(f"gen {gen}: {p.mutation}: {p.note}")

    def collect(self, baseline, bhash: str, gen: int) -> list:
        """Up to `population` new, untried, not-twice-failed proposals: queue, command, mutations."""
        want, seen, out = self.settings.search.population, {bhash}, []

        def offer(p) -> None:
            try:
                p.cfg, p.note = compute.equalize(baseline, p.cfg, self.settings.promotion.equal, self.vocab_size())
            except UserError as e:
                p.cfg, p.note = None, f"its budget cannot be made equal to the baseline's: {e}"
            h = config_hash(p.cfg) if p.cfg is not None else ""
            changed = set(diff(baseline, p.cfg)) - {"name", "parent", "mutations"} if p.cfg is not None else set()
            why = (p.note if p.cfg is None
                   else "differs from the baseline only in train.seed (the supervisor sets seeds)"
                   if changed == {"train.seed"}
                   else "same as the baseline or another candidate" if h in seen
                   else "failed twice before" if self.ledger.failure_count(h) >= 2
                   else "already screened against this baseline" if self.ledger.tried_against(h, bhash) else "")
            if why:
                self.view.log(f"gen {gen}: skip {p.mutation} [{p.source}]: {why}")
                if p.queue_file and os.path.exists(p.queue_file):
                    os.unlink(p.queue_file)
            elif len(out) < want:
                seen.add(h)
                out.append(p)

        for p in proposer.from_queue(os.path.join(self.dir, "queue"), baseline, self.view.log):
            offer(p)
        command = self.settings.proposer.command
        if len(out) < want and command:
            board = proposer_input(self.ledger, self.campaign, self.settings.promotion, self.rel, baseline)
            for p in proposer.from_command(command, board, baseline,
                                           self.settings.proposer.timeout_s, self.view.log):
                offer(p)
        if len(out) < want:
            rng_seed = self.settings.search.seed * 7919 + gen
            if self.settings.search.proposer == "learned":
                fresh = learned.propose(baseline, 2 * (want - len(out)), rng_seed, self.ledger, bhash,
                                        self.settings.promotion, skip=lambda h: h in seen)
            else:
                fresh = proposer.from_mutations(baseline, 4 * want, rng_seed)
            for p in fresh:
                offer(p)
        return out

    def vocab_size(self) -> int:
        """The tokenizer's vocabulary, for FLOPs per token in promotion.equal: flops (0 otherwise)."""
        if self.settings.promotion.equal != "flops":
            return 0
        if not hasattr(self, "_vocab"):
            from foundry.data import load_dataset
            self._vocab = load_dataset(load(self.baseline_path).data).tokenizer.vocab_size
        return self._vocab

    def phase_screen(self, gen: int) -> None:
        self.run_queued(gen)
        rows = self.ledger.trials(gen=gen, role="screen")
        base = next((t for t in rows if t["variant"] == "baseline"), None)
        cands = [t for t in rows if t["variant"] != "baseline" and usable(t)]
        lower = self.settings.promotion.lower_is_better
        if base is None:
            return self.reject(gen, None, NOTHING_TO_TRY)
        if not usable(base):
            return self.reject(gen, None, f"baseline trial {base['status']}: {base['reason']}")
        if not cands:
            return self.reject(gen, None, "no candidate finished")
        variant = None
        if self.settings.search.proposer == "learned":   # confirm what the ledger's estimates favour
            bhash = self.ledger.generation(gen)["baseline_hash"]
            now = [{**t, "base_metric": base["metric"]} for t in cands]
            earlier = learned.waiting(self.ledger, bhash, gen) if self.settings.promotion.confirm_seeds else []
            best, scores = learned.pick(self.ledger, bhash, now + earlier, lower)
            top = ", ".join(f"{k} {100 * v:+.2f}%" for k, v in sorted(scores.items(), key=lambda kv: -kv[1])[:4])
            if best is None:
                return self.reject(gen, None, "no candidate is an improvement with posterior probability >= "
                                              f"{learned.CONFIRM_PROB} ({top})")
            variant = best["variant"] if best["gen"] == gen else f"g{best['gen']:04d}-{best['variant']}"
            self.view.log(f"gen {gen}: best estimated effects: {top}")
        else:
            best = min(cands, key=lambda t: t["metric"] if lower else -t["metric"])
            if improvement(base["metric"], best["metric"], lower) <= 0:
                return self.reject(gen, best, f"best screened {best['metric']:.4f} does not beat the baseline's "
                                              f"{base['metric']:.4f}", base["metric"], best["metric"])
        confirm = self.settings.promotion.confirm_seeds
        seeds = [base["seed"] + i for i in range(1, confirm + 1)]   # fresh: the screening seed only chose
        variant = variant or best["variant"]   # a candidate screened in an earlier generation: g0004-v02-...
        new = [self.trial_row(gen, v, "confirm", os.path.join(self.root, t["config_path"]), t["config_hash"],
                              t["parent"], t["mutation"], s)
               for s in seeds for v, t in ((variant, best), ("baseline", base))]
        self.ledger.set_phase(gen, "confirm", new, candidate=variant)
        self.view.log(f"gen {gen}: {variant} screened {best['metric']:.4f} vs baseline "
                      f"{best.get('base_metric', base['metric']):.4f}; "
                      + (f"confirming on fresh seeds {seeds}" if seeds else NO_NOISE_CONTROL))

    def verdict(self, gen: int) -> tuple:
        """judge() on the confirmation trials (the screening pair without noise control), compute checked."""
        variant = self.ledger.generation(gen)["candidate"]
        role = "confirm" if self.settings.promotion.confirm_seeds else "screen"
        rows = self.ledger.trials(gen=gen, role=role)
        base_rows = [t for t in rows if t["variant"] == "baseline"]
        cand_rows = [t for t in rows if t["variant"] == variant]
        kind, reason, d, table = judge(base_rows, cand_rows, self.settings.promotion)
        summaries = [[json.loads(t["summary"]) if t["summary"] else None for t in side]
                     for side in (base_rows, cand_rows)]
        spent, unequal = compute.check(*summaries, self.settings.promotion.equal)
        if unequal and kind != "more":
            kind, reason = "reject", f"{unequal}; {reason}"
        return kind, reason, d, table, base_rows, cand_rows, spent

    def phase_confirm(self, gen: int) -> None:
        self.run_queued(gen)
        kind, reason, d, table, base_rows, cand_rows, spent = self.verdict(gen)
        if kind == "more":   # sequential confirmation: the second look's fresh seeds on both sides
            first = max(t["seed"] for t in base_rows) + 1
            seeds = list(range(first, first + self.settings.promotion.max_confirm_seeds - len(table)))
            new = [self.trial_row(gen, t["variant"], "confirm", os.path.join(self.root, t["config_path"]),
                                  t["config_hash"], t["parent"], t["mutation"], s)
                   for s in seeds for t in (cand_rows[0], base_rows[0])]
            self.ledger.set_phase(gen, "confirm", new)
            self.view.log(f"gen {gen}: unclear after {len(table)} seeds ({reason}); adding seeds {seeds}")
            return
        if kind == "promote" and self.settings.promotion.transfer:
            new = transfer.trials(self, gen, base_rows[0], cand_rows[0])
            self.ledger.set_phase(gen, "transfer", new)
            self.view.log(f"gen {gen}: confirmed ({reason}); transfer check at "
                          f"{transfer.describe(self.settings.promotion.transfer)}")
            return
        self.decide(gen, kind, reason, d, table, base_rows + cand_rows, spent)

    def phase_transfer(self, gen: int) -> None:
        self.run_queued(gen)
        kind, reason, d, table, base_rows, cand_rows, spent = self.verdict(gen)   # as confirmed
        passed, line = transfer.verdict(self.ledger.trials(gen=gen, role="transfer"), self.settings.promotion)
        if not passed:
            kind, reason = "near_miss", f"{line}; confirmed before: {reason}"
        self.decide(gen, kind, reason, d, table, base_rows + cand_rows, spent, [line])

    def decide(self, gen, kind, reason, d, table, judged, spent, notes=()) -> None:
        """Record the generation's decision; a promotion is recorded as an intent with its full commit."""
        cand = next(t for t in judged if t["variant"] != "baseline")
        variant = cand["variant"]
        numbers = {k: getattr(d, k, None)
                   for k in ("baseline_mean", "candidate_mean", "improvement", "threshold", "se")}
        numbers.update(variant=variant, mutation=cand["mutation"], metric=self.settings.promotion.metric, reason=reason)
        notes = [f"Compute: {compute.describe(spent)} (promotion.equal: {self.settings.promotion.equal})", *notes]
        if not self.settings.promotion.confirm_seeds:
            notes.append(NO_NOISE_CONTROL)
        details = {"seeds": table, "trials": [t["id"] for t in judged], "difference": d and d.to_dict(),
                   "compute": spent, "notes": notes}
        if kind == "promote":
            details["promotion"] = asdict(self.build_promotion(gen, cand, d, table, details["trials"], reason, notes))
            self.ledger.record_decision(gen, "promote", "intent", "promote", details=details, **numbers)
            self.view.log(f"gen {gen}: PROMOTE {variant} ({cand['mutation']}): {reason}")
            crash_point("after_rank")
        else:
            self.ledger.record_decision(gen, kind, "final", "cleanup", details=details, **numbers)
            self.view.log(f"gen {gen}: {kind.replace('_', '-')} {variant} ({cand['mutation']}): {reason}")

    def build_promotion(self, gen, cand, d, table, trial_ids, test, notes) -> Promotion:
        baseline = load(os.path.join(self.dir, f"gen_{gen:04d}", "baseline.yaml"))
        candidate = load(os.path.join(self.root, cand["config_path"]))
        return build_promotion(self.repo, self.rel, f"{self.campaign}/gen_{gen:04d}", baseline, candidate,
                               cand["mutation"], self.settings.promotion.metric, d, table, trial_ids,
                               self.campaign, gen, test, notes)

    def phase_promote(self, gen: int) -> None:
        promotion = Promotion(**json.loads(self.ledger.decision(gen)["details"])["promotion"])
        for attempt in range(3):
            try:
                sha = promote(self.repo, promotion)
                break
            except PromotionConflict as e:
                self.ledger.finish_promotion(gen, "abandoned", None, str(e))
                self.view.log(f"gen {gen}: promotion abandoned: {e}")
                return
            except git.GitCommandError as e:   # HEAD moved under us, or index.lock held: try again
                if attempt == 2:
                    raise
                self.view.log(f"gen {gen}: git failed ({str(e).splitlines()[0]}); retrying")
                time.sleep(2)
        self.ledger.finish_promotion(gen, "committed", sha)
        self.view.log(f"gen {gen}: committed {sha[:10]} {promotion.rel_path}: {promotion.change}")

    def phase_cleanup(self, gen: int) -> None:
        """Delete the checkpoints the policy does not keep. `baseline` keeps the promoted variant's
        (it is the baseline now) or else the baseline's screening run, and drops the baseline
        checkpoint an earlier generation kept, so a person always has the current baseline to try."""
        policy, decision = self.settings.search.keep_checkpoints, self.ledger.decision(gen)
        trials = self.ledger.trials(gen=gen)
        promoted = decision and decision["state"] == "committed" and policy in ("promoted", "baseline")
        keep = {t["id"] for t in trials if promoted and t["variant"] == decision["variant"]}
        if policy == "baseline" and not promoted:
            keep |= {t["id"] for t in trials if t["variant"] == "baseline" and t["role"] == "screen"
                     and t["status"] == "done"}
        if policy == "baseline" and keep:   # a newer baseline checkpoint exists: drop the older ones
            trials += [t for t in self.ledger.trials(variant=["baseline"]) if t["gen"] < gen]
        if policy != "all":
            for t in trials:
                if t["id"] not in keep:
                    shutil.rmtree(os.path.join(self.root, t["run_dir"], "checkpoint"), ignore_errors=True)
        self.ledger.set_phase(gen, "done")

    def reject(self, gen, trial, reason, base_metric=None, cand_metric=None) -> None:
        self.ledger.record_decision(gen, "reject", "final", "cleanup", reason=reason,
                                    variant=trial and trial["variant"], mutation=trial and trial["mutation"],
                                    metric=self.settings.promotion.metric, baseline_mean=base_metric,
                                    candidate_mean=cand_metric)
        self.view.log(f"gen {gen}: reject: {reason}")

    # ---------------------------------------------------------------- trials
    def trial_row(self, gen, variant, role, config_path, chash, parent, mutation, seed) -> dict:
        tid = f"g{gen:04d}-{variant}-s{seed}"
        run_dir = os.path.join(self.dir, f"gen_{gen:04d}", "runs", tid)
        return dict(id=tid, gen=gen, variant=variant, role=role, config_path=os.path.relpath(config_path, self.root),
                    config_hash=chash, parent=parent, mutation=mutation, seed=seed,
                    run_dir=os.path.relpath(run_dir, self.root))

    def run_queued(self, gen: int) -> None:
        for t in self.ledger.trials(gen=gen, status="queued"):
            self.pool.submit(self.trial_spec(t))
        while self.pool.busy():
            for event in self.pool.poll():
                self.on_event(event)
            if self.stop_signal:
                raise Stopped
            self.view.update([progress_line(s.trial_id, w.name, started, read_progress(s.out_dir), self.view.columns())
                              for s, w, started in self.pool.running()])
            time.sleep(self.poll_s)

    def trial_spec(self, t: dict) -> TrialSpec:
        out = os.path.join(self.root, t["run_dir"])
        resume = os.path.isdir(os.path.join(out, "checkpoint"))   # continue an interrupted attempt
        return TrialSpec(t["id"], os.path.join(self.root, t["config_path"]), out, [f"train.seed={t['seed']}"],
                         resume=resume)

    def on_event(self, event) -> None:
        tid = event.spec.trial_id
        if event.kind == "started":
            self.ledger.mark_running(tid, event.worker.name, event.worker.device, event.pid, self.fingerprint())
            self.view.log(f"start {tid} on {event.worker.name}")
            return
        r = event.result
        status, reason = r.status, r.reason
        metric = (r.summary or {}).get(self.settings.promotion.metric) if status == "done" else None
        if status == "done" and not isinstance(metric, (int, float)):
            status, reason = "failed", f"summary.json has no number for {self.settings.promotion.metric}"
        wrong = code.wrong_code(r.summary, self.root) if r.summary else ""
        if wrong:
            status, reason, metric = "failed", wrong, None
        self.ledger.mark_finished(tid, status, metric, r.summary, reason, r.log_tail, r.wall_s)
        shown = f"{self.settings.promotion.metric} {metric:.4f}" if status == "done" else reason
        self.view.log(f"{status} {tid} ({r.wall_s:.0f}s): {shown}")

    def fingerprint(self) -> str:
        """The code a trial runs: HEAD plus uncommitted edits (cached for a few seconds); see agent/code.py."""
        if time.time() - self._fingerprint[0] > 5:
            self._fingerprint = (time.time(), running_code(self.repo))
        return self._fingerprint[1]
