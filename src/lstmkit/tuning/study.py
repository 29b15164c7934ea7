"""A study: Optuna trials of one task, on storage that any number of workers share.

    study dir/
        study.db          the default storage (SQLite); --storage names another
        trials/0007/      each trial's run directory (a normal one: load, predict, serve)
        best              the best configuration's run directory (a link, swapped in one
                          step when a better trial appears)
        study.json, report.html, history.png, importances.png    the study's report

Workers: every ``lstmkit tune`` started with the same storage and study name joins the
study: Optuna hands each worker its own trial numbers, and a worker asks for a new trial
only while the finished and running trials are fewer than ``trials``. Kill a worker and
run it again: the trials it left running (its process is gone) are marked failed and
their options queued again, so the study goes on where it was. The first trial is the
task's untuned configuration, so the report can put the best beside it. When a worker
stops, it writes the best configuration's run directory and the report under a lock; a
second worker finding them up to date leaves them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError
from lstmkit.io.files import read_json
from lstmkit.tuning.objectives import OBJECTIVES, TaskObjective
from lstmkit.tuning.space import Param, resolve_space

logger = logging.getLogger("lstmkit.tune")

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
BEST = "best"
SUMMARY = "study.json"
WORKER = "worker"  # a trial's user attribute: host:pid of the process running it
ORPHANED = "orphaned"  # ... and the mark of one a killed worker left: it does not count


@dataclass
class TuningResult:
    """What a study holds once this worker stopped: its best trial (number, value,
    options), the untuned default's value, the trial counts by state, the run directory
    of the best configuration and the report."""

    task: str
    metric: str
    best_trial: int
    best_value: float
    best_options: dict[str, Any]
    untuned_value: float | None
    states: dict[str, int]
    best_run: Path
    report: Path
    note: str


def _optuna():
    import optuna  # imported here: optuna and SQLAlchemy take a second to import

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _redacted(url: str) -> str:
    """A storage URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_storage(url: str | None, study_dir: Path) -> Any:
    """Optuna storage: SQLite in the study dir by default, an RDB URL (postgresql://...,
    sqlite:///...), or ``journal:PATH`` (Optuna's journal file on a shared filesystem)."""
    optuna = _optuna()
    if url is None:
        url = f"sqlite:///{study_dir / 'study.db'}"
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        # SQLite: a worker waits for another's write instead of failing at once
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except Exception as error:
            # two machines creating the tables at once: the loser finds them made
            if "duplicate key" not in str(error) and "UNIQUE constraint" not in str(error):
                raise
            time.sleep(1.0)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as error:  # SQLAlchemy's and the drivers' errors, of every kind
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise LstmkitError(f"cannot open the study storage {_redacted(url)}: {reason}; check "
                           "--storage (e.g. postgresql://user:password@host/db, "
                           "sqlite:///study.db or journal:/shared/study.log)") from None


class Tuner:
    """One task's search: ``Tuner(task, config, data).run(study_dir, trials=20)``.

    ``config`` is the task's config with everything the search does not vary; ``data``
    and ``options`` what its fit reads; ``space`` the user's ranges, choices and fixed
    values (lstmkit.tuning.space) over the task's default space.
    """

    def __init__(self, task: str, config: Any, data: Any, options: dict[str, Any] | None = None,
                 *, space: dict[str, Param | Any] | None = None, sampler: str = "tpe",
                 pruner: str = "median", seed: int = 0) -> None:
        if task not in OBJECTIVES:
            raise LstmkitError(f"cannot tune {task!r}; tunable tasks: {', '.join(OBJECTIVES)}")
        if sampler not in SAMPLERS:
            raise LstmkitError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if pruner not in PRUNERS:
            raise LstmkitError(f"--pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
        self.task, self.sampler, self.pruner, self.seed = task, sampler, pruner, seed
        self.objective: TaskObjective = OBJECTIVES[task](config, data, options or {})
        self.space, self.fixed = resolve_space(self.objective.defaults(), space or {},
                                               self.objective.allowed())
        self._check_bounds()

    def _check_bounds(self) -> None:
        """The fixed values, and every end and choice of the space (the others as the
        task's config has them), make valid configs: a bad range is refused before
        anything runs."""
        try:
            self.objective.configure(self.fixed)
        except (LstmkitError, TypeError) as error:
            raise LstmkitError(f"the fixed options {self.fixed} are not valid: {error}"
                               ) from None
        for name, param in self.space.items():
            for value in param.values():
                try:
                    self.objective.configure({**self.fixed, name: value})
                except LstmkitError as error:
                    raise LstmkitError(f"{name}={value!r} (from its range {param.describe()}) "
                                       f"is not a valid option: {error}") from None
                except TypeError as error:
                    raise LstmkitError(f"{name}={value!r} has the wrong type: {error}") from None

    # --- the study ------------------------------------------------------------------------

    def _study(self, storage: Any, name: str) -> Any:
        optuna = _optuna()
        pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
                  "hyperband": optuna.pruners.HyperbandPruner(),
                  "none": optuna.pruners.NopPruner()}[self.pruner]
        try:
            study = optuna.create_study(study_name=name, storage=storage, pruner=pruner,
                                        direction="minimize", load_if_exists=True)
        except Exception as error:
            raise LstmkitError(f"cannot open study {name!r}: {error}") from None
        task = study.user_attrs.get("task")
        if task is not None and task != self.task:
            raise LstmkitError(f"study {name!r} holds {task} trials, not {self.task}: choose "
                               "another --study-name (or --study-dir)")
        if task is None:
            study.set_user_attr("task", self.task)
            study.set_user_attr("metric", self.objective.metric)
        # the k-th worker to join draws from seed + k: workers with one seed would propose
        # the same options (a lone worker's study stays reproducible from its seed)
        joined = int(study.user_attrs.get("workers_joined", 0))
        study.set_user_attr("workers_joined", joined + 1)
        seed = self.seed + joined
        study.sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe"
                         else optuna.samplers.RandomSampler(seed=seed))
        return study

    def run(self, study_dir: str | Path, trials: int = 20, time_budget: float | None = None,
            storage: str | None = None, study_name: str | None = None) -> TuningResult:
        """Run trials until the study has ``trials`` (or ``time_budget`` seconds of this
        worker have passed), then write the best run and the report."""
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise LstmkitError(f"--trials must be a whole number of at least 1, got {trials!r}")
        if time_budget is not None and not time_budget > 0:
            raise LstmkitError(f"--search-time must be positive, got {time_budget}")
        study_dir = Path(study_dir)
        if study_dir.exists() and not study_dir.is_dir():
            raise LstmkitError(f"--study-dir {study_dir} is a file; name a folder")
        created = not study_dir.exists()
        study_dir.mkdir(parents=True, exist_ok=True)
        try:
            # workers starting together would each create the storage's tables: one at a
            # time (the lock file lives in the study dir, shared by the workers)
            with _locked(study_dir / ".open.lock"):
                study = self._study(open_storage(storage, study_dir),
                                    study_name or study_dir.resolve().name)
        except LstmkitError:
            if created:  # nothing of a study that never started is left behind
                shutil.rmtree(study_dir, ignore_errors=True)
            raise
        self._requeue_orphans(study)
        if not study.trials:  # the first trial is the untuned configuration
            untuned = self.objective.untuned(list(self.space))
            study.enqueue_trial(untuned, user_attrs={"untuned": True}, skip_if_exists=True)
        started = time.monotonic()
        while self._wanted(study, trials):
            if time_budget is not None and time.monotonic() - started >= time_budget:
                break
            self._one_trial(study, study_dir)
        return self._finish(study, study_dir)

    def _wanted(self, study: Any, trials: int) -> bool:
        """Whether the study needs another trial: its trials so far, finished or running,
        less those a killed worker left (queued again), are fewer than ``trials``."""
        optuna = _optuna()
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                  optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
        counted = [t for t in study.get_trials(deepcopy=False, states=states)
                   if not t.user_attrs.get(ORPHANED)]
        return len(counted) < trials

    def _requeue_orphans(self, study: Any) -> None:
        """Trials left running by a killed worker of this machine: failed, and their
        options queued again."""
        optuna = _optuna()
        host = socket.gethostname()
        for trial in study.get_trials(deepcopy=False,
                                      states=(optuna.trial.TrialState.RUNNING,)):
            worker_host, _, pid = str(trial.user_attrs.get(WORKER, "")).rpartition(":")
            if worker_host != host or not pid.isdigit() or _alive(int(pid)):
                continue
            study._storage.set_trial_user_attr(trial._trial_id, ORPHANED, True)
            study._storage.set_trial_state_values(trial._trial_id,
                                                  optuna.trial.TrialState.FAIL)
            again = {k: v for k, v in trial.user_attrs.items() if k != WORKER}
            study.enqueue_trial(trial.params, user_attrs=again)
            logger.info("trial %d was left running by a killed worker: queued again",
                        trial.number)

    def _one_trial(self, study: Any, study_dir: Path) -> None:
        optuna = _optuna()
        from lstmkit.train import observe_epochs

        trial = study.ask()
        trial.set_user_attr(WORKER, f"{socket.gethostname()}:{os.getpid()}")
        values = {**self.fixed, **{name: p.suggest(trial) for name, p in self.space.items()}}
        run_dir = study_dir / "trials" / f"{trial.number:04d}"
        shutil.rmtree(run_dir, ignore_errors=True)  # a killed attempt's leftovers

        def report(epoch: int, loss: float) -> None:
            trial.report(loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        observing = observe_epochs(report) if self.objective.prunable else (
            contextlib.nullcontext())
        started = time.monotonic()
        try:
            with observing:
                value = self.objective.trial(values, run_dir)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            logger.info("trial %d pruned", trial.number)
            return
        except LstmkitError as error:
            trial.set_user_attr("error", str(error))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            logger.warning("trial %d failed: %s", trial.number, error)
            return
        trial.set_user_attr("seconds", time.monotonic() - started)
        study.tell(trial, value)
        logger.info("trial %d: %s %.5g (%s)", trial.number, self.objective.metric, value,
                    ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in values.items()))

    # --- the best run and the report ------------------------------------------------------

    def _finish(self, study: Any, study_dir: Path) -> TuningResult:
        optuna = _optuna()
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
            raise LstmkitError("no trial finished" + (f"; the first failed: {errors[0]}"
                                                      if errors else ""))
        best = min(complete, key=lambda t: (t.value, t.number))
        values = {**self.fixed, **best.params}
        with _locked(study_dir / ".best.lock"):
            summary_path = study_dir / SUMMARY
            summary = read_json(summary_path) if summary_path.exists() else {}
            best_link = study_dir / BEST
            if summary.get("best_trial") != best.number or not best_link.exists():
                note = self._write_best(values, best.number, study_dir)
            else:
                note = summary["best_run"]
            from lstmkit.tuning.report import write_report

            summary = write_report(study, study_dir, self.objective, self.space, self.fixed,
                                   best, note)
        return TuningResult(
            task=self.task, metric=self.objective.metric, best_trial=best.number,
            best_value=float(best.value), best_options=values,
            untuned_value=summary["untuned_value"], states=summary["states"],
            best_run=study_dir / BEST, report=study_dir / "report.html", note=note)

    def _write_best(self, values: dict[str, Any], number: int, study_dir: Path) -> str:
        """The best configuration's run directory, linked as ``best`` in one step."""
        trial_dir = study_dir / "trials" / f"{number:04d}"
        final = study_dir / "trials" / f"{number:04d}-best"
        shutil.rmtree(final, ignore_errors=True)
        run_dir, note = self.objective.finish(values, trial_dir, final)
        link = study_dir / ".best.next"
        link.unlink(missing_ok=True)
        link.symlink_to(run_dir.relative_to(study_dir))
        os.replace(link, study_dir / BEST)
        for older in (study_dir / "trials").glob("*-best"):  # a best run since beaten
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
        return note


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` for the block (waits for another worker's)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
