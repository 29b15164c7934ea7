"""A study's report: study.json (the numbers), history.png (every trial's score and the
best so far), importances.png (how much each option mattered, Optuna's fANOVA) and
report.html (the best configuration beside the untuned default, which part chose it,
and every trial)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lstmkit.io.files import atomic_write_json
from lstmkit.report.figures import plt, save_figure
from lstmkit.report.forecast_report import write_report_page
from lstmkit.tuning.objectives import TaskObjective
from lstmkit.tuning.space import Param


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summarise(study: Any, objective: TaskObjective, space: dict[str, Param],
              fixed: dict[str, Any], best: Any, note: str) -> dict[str, Any]:
    """The study's numbers, JSON-ready."""
    trials = [{"number": t.number, "state": t.state.name, "value": t.value,
               "params": t.params, "seconds": t.user_attrs.get("seconds"),
               "worker": t.user_attrs.get("worker"), "error": t.user_attrs.get("error")}
              for t in study.trials]
    states: dict[str, int] = {}
    for trial in trials:
        states[trial["state"]] = states.get(trial["state"], 0) + 1
    untuned = next((t for t in study.trials if t.user_attrs.get("untuned")
                    and t.state.name == "COMPLETE"), None)
    return {
        "task": objective.task, "metric": objective.metric, "study": study.study_name,
        "chosen_on": objective.chosen_on(),
        "space": {name: param.describe() for name, param in space.items()}, "fixed": fixed,
        "best_trial": best.number, "best_value": best.value,
        "best_options": {**fixed, **best.params}, "best_run": note,
        "untuned_trial": None if untuned is None else untuned.number,
        "untuned_value": None if untuned is None else untuned.value,
        "untuned_options": objective.untuned(list(space)),
        "states": states, "trials": trials,
    }


def plot_history(summary: dict[str, Any], path: Path) -> Path:
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    figure, ax = plt.subplots(figsize=(8, 4))
    numbers = [t["number"] for t in done]
    values = [t["value"] for t in done]
    ax.scatter(numbers, values, s=18, label="trial")
    best, running = [], float("inf")
    for value in values:
        running = min(running, value)
        best.append(running)
    ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    if summary["untuned_value"] is not None:
        ax.axhline(summary["untuned_value"], color="grey", linestyle="--",
                   label="untuned default")
    ax.set_xlabel("trial")
    ax.set_ylabel(summary["metric"])
    ax.set_title(f"{summary['task']} study: {summary['metric']} by trial (lower is better)")
    ax.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_importances(importances: dict[str, float], path: Path) -> Path:
    names = list(importances)[::-1]
    figure, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (share of the score's variance, fANOVA)")
    ax.set_title("which options mattered")
    figure.tight_layout()
    return save_figure(figure, path)


def write_report(study: Any, study_dir: Path, objective: TaskObjective,
                 space: dict[str, Param], fixed: dict[str, Any], best: Any,
                 note: str) -> dict[str, Any]:
    """study.json, the pictures and report.html in ``study_dir``; returns the summary."""
    summary = summarise(study, objective, space, fixed, best, note)
    images = [plot_history(summary, study_dir / "history.png").name]
    importances = _importances(study)
    if importances:
        summary["importances"] = importances
        images.append(plot_importances(importances, study_dir / "importances.png").name)
    atomic_write_json(study_dir / "study.json", summary)
    names = sorted(set(summary["best_options"]) | set(summary["untuned_options"]))
    rows = [f"{'option':<24}{'best':>14}{'untuned':>14}"]
    rows += [f"{n:<24}{_value(summary['best_options'].get(n, '')):>14}"
             f"{_value(summary['untuned_options'].get(n, '')):>14}" for n in names]
    untuned = summary["untuned_value"]
    rows.append(f"{summary['metric']:<24}{_value(summary['best_value']):>14}"
                f"{'' if untuned is None else _value(untuned):>14}")
    trials = [f"{'trial':>6}{'state':>10}{'value':>12}{'seconds':>9}  options"]
    trials += [f"{t['number']:>6}{t['state']:>10}"
               f"{'' if t['value'] is None else _value(t['value']):>12}"
               f"{'' if t['seconds'] is None else format(t['seconds'], '.1f'):>9}  "
               + ", ".join(f"{k}={_value(v)}" for k, v in t["params"].items())
               for t in summary["trials"]]
    headline = (f"Best of {len(summary['trials'])} trials: trial {best.number}, "
                f"{summary['metric']} {best.value:.4g}"
                + ("" if untuned is None else f" against {untuned:.4g} untuned") + ". "
                f"Chosen on {summary['chosen_on']}. Best run: {note}.")
    write_report_page(study_dir, f"lstmkit tune {summary['task']}: {summary['study']}",
                      {"best configuration beside the untuned default": "\n".join(rows),
                       "trials": "\n".join(trials)}, images, [headline])
    return summary


def _importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances, or nothing while too few trials finished."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. every finished trial had the same options
        return {}
