"""The long-range dependency grid: LSTM (and variants) against GRU and plain RNN.

Runs every row of GRID (adding problem, copying memory, sequential digits), each
under its own time budget, in worker processes of one torch thread each (on a
busy 2-core machine one thread per process is several times faster than two);
writes each run's directory (result.json, curve.png, weights) to OUT/runs, one learning-curve plot
per task and length to OUT, the results table OUT/table.md with the command that
reproduces each row, and the gradient pictures OUT/gradient_norms_T{100,200}.png.

    python benchmarks/memory_tasks.py                  # the whole grid
    python benchmarks/memory_tasks.py --only adding    # rows whose name contains "adding"
    python benchmarks/memory_tasks.py --table-only     # rebuild table and plots from OUT/runs

Variant rows (layer_norm, peephole) run on the slow reference kernel until the
native kernel exists, so they get short lengths.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections import defaultdict
from dataclasses import fields, replace
from pathlib import Path

import torch

from lstmkit.data.long_range import adding_batch
from lstmkit.experiment import Experiment
from lstmkit.report.curves import plot_curves
from lstmkit.report.gradients import plot_gradient_norms
from lstmkit.tasks.long_range import ExperimentConfig, hidden_state_gradient_norms
from lstmkit.tasks.long_range.models import build_model
from lstmkit.tasks.long_range.specs import beats_baseline, task_spec
from lstmkit.tasks.long_range_choices import LSTM_VARIANTS, MODELS

# ExperimentConfig's defaults (hidden 64, batch 32, lr per task) are the sizes this grid
# was measured with on 2 shared cores; digits runs are capped in steps as well as time
DIGITS = {"steps": 6000}


def grid() -> list[ExperimentConfig]:
    rows = []
    for T, budget in ((100, 300), (200, 600), (400, 600), (750, 600)):
        rows.append(ExperimentConfig("adding", "lstm", T, time_budget_s=budget))
    for T in (100, 200, 400):
        rows.append(ExperimentConfig("adding", "rnn", T, time_budget_s=200))
    rows.append(ExperimentConfig("adding", "gru", 200, time_budget_s=480))
    rows.append(ExperimentConfig("adding", "lstm", 200, "forget0", time_budget_s=480))
    for variant in ("layer_norm", "peephole"):
        rows.append(ExperimentConfig("adding", "lstm", 100, variant, time_budget_s=300))
    for T, budget in ((200, 480), (400, 300), (750, 400)):
        rows.append(ExperimentConfig("adding", "lstm", T, "layer_norm", time_budget_s=budget))
    for model in ("lstm", "gru", "rnn"):
        rows.append(ExperimentConfig("copy", model, 100, time_budget_s=420))
    rows.append(ExperimentConfig("copy", "lstm", 100, "layer_norm", time_budget_s=240))
    rows.append(ExperimentConfig("copy", "lstm", 200, "layer_norm", time_budget_s=240))
    for model in ("lstm", "gru", "rnn"):
        rows.append(ExperimentConfig("digits", model, time_budget_s=300, **DIGITS))
    rows.append(ExperimentConfig("digits", "lstm", permuted=True, time_budget_s=300, **DIGITS))
    return rows


def cli_command(config: ExperimentConfig) -> str:
    """The `lstmkit experiment` command that reproduces one row (defaults left out)."""
    words = ["lstmkit experiment", config.task]
    if config.task == "digits":
        if config.permuted:
            words.append("--permuted")
    else:
        words.append(f"--length {config.length}")
    words.append(f"--cell {config.model}")
    defaults = ExperimentConfig(config.task, length=config.length)
    options = {"variant": "--variant", "hidden": "--hidden-size", "steps": "--steps",
               "time_budget_s": "--time-budget", "batch_size": "--batch-size", "lr": "--lr",
               "eval_every": "--eval-every", "seed": "--seed"}
    for name, flag in options.items():
        value = getattr(config, name)
        if value != getattr(defaults, name):
            words.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    words.append("--threads 1")
    return " ".join(words)


def run_row(config: ExperimentConfig, out: Path) -> None:
    """Worker: train one row into its run directory OUT/runs/NAME (replacing an old one)."""
    torch.set_num_threads(1)
    result = Experiment(config).fit(None, out / "runs" / config.name, overwrite=True)
    print(f"{config.name}: {result.metric_name} {result.final_metric:.4f} "
          f"(baseline {result.baseline:.4f}) in {result.seconds:.0f}s", flush=True)


def config_from(saved: dict) -> ExperimentConfig:
    return ExperimentConfig(**{f.name: saved[f.name] for f in fields(ExperimentConfig)})


def load_runs(out: Path) -> list[dict]:
    return [json.loads(path.read_text())
            for path in sorted((out / "runs").glob("*/result.json"))]


def first_step_beating_baseline(run: dict) -> int | None:
    """Recomputed from the curve, so the table follows the current rule for every stored run."""
    task, metric, baseline = run["config"]["task"], run["metric_name"], run["baseline"]
    return next((point["step"] for point in run["curve"]
                 if beats_baseline(task, point[metric], baseline)), None)


def format_table(runs: list[dict]) -> str:
    """Markdown table: one row per run, with its metric, baseline, steps, time and command."""
    lines = [
        "| task | T | model | hidden | params | test metric | baseline | beat baseline at step "
        "| solved at step | steps | seconds | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {"adding": 0, "copy": 1, "digits": 2}
    def row_order(run: dict) -> tuple:
        config = run["config"]
        return (order[config["task"]], config["permuted"], config["length"],
                MODELS.index(config["model"]), LSTM_VARIANTS.index(config["variant"]))

    for run in sorted(runs, key=row_order):
        config = config_from(run["config"])
        task = "digits (permuted)" if config.permuted else config.task
        model = config.model if config.variant == "plain" else f"{config.model} {config.variant}"
        metric = f"{run['metric_name']} {run['final_metrics'][run['metric_name']]:.4f}"
        if "recall_accuracy" in run["final_metrics"]:
            metric += f" (recall {run['final_metrics']['recall_accuracy']:.3f})"
        lines.append(
            f"| {task} | {config.length} | {model} | {run['hidden']} | {run['parameters']} "
            f"| {metric} | {run['baseline']:.4f} | {first_step_beating_baseline(run) or '-'} "
            f"| {run['steps_to_solve'] or '-'} | {run['steps']} | {run['seconds']:.0f} "
            f"| `{cli_command(config)}` |"
        )
    return "\n".join(lines) + "\n"


def plot_task_curves(runs: list[dict], out: Path) -> list[Path]:
    """One plot per task and length with every model's test metric against steps."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        config = run["config"]
        task = "digits_permuted" if config["permuted"] else config["task"]
        groups[task if config["task"] == "digits" else f"{task}_T{config['length']}"].append(run)
    paths = []
    for group, members in sorted(groups.items()):
        metric = members[0]["metric_name"]
        series = {}
        for run in members:
            label = run["config"]["model"]
            if run["config"]["variant"] != "plain":
                label += f" {run['config']['variant']}"
            series[label] = ([p["step"] for p in run["curve"]], [p[metric] for p in run["curve"]])
        paths.append(plot_curves(series, out / f"curves_{group}.png", xlabel="training step",
                                 ylabel=f"test {metric}", baseline=members[0]["baseline"],
                                 logy=metric != "accuracy", title=group))
    return paths


def gradient_picture(out: Path, T: int) -> Path:
    """||dLoss/dh_t|| on adding sequences of length T for the RNN, GRU and LSTM.

    "init" lines are freshly initialised models, "trained" lines the grid's adding
    rows at this T, from the weights they saved in OUT/runs; for the trained LSTM
    the cell state's ||dLoss/dc_t|| too.
    """
    x, y = adding_batch(64, T, torch.Generator().manual_seed(7))
    norms = {}
    for model_name in MODELS[::-1]:
        config = ExperimentConfig("adding", model_name, T)
        spec = task_spec(config)
        torch.manual_seed(0)
        for stage in ("init", "trained"):
            label = f"{model_name} {stage}"
            if stage == "init":
                model = build_model(config, spec)
            else:
                run_dir = out / "runs" / config.name
                if not run_dir.is_dir():
                    continue
                trained = Experiment.load(run_dir)
                model = trained.model
                label += f" ({'solved' if trained.result.steps_to_solve else 'not solved'})"
            # float64 follows the plain RNN's gradient below float32's floor of 1e-38
            measured = hidden_state_gradient_norms(model.double(), x.double(), y.double(),
                                                   spec.loss)
            norms[f"{label}: dL/dh_t"] = measured["h"]
            if stage == "trained" and "c" in measured:
                norms[f"{label}: dL/dc_t"] = measured["c"]
    return plot_gradient_norms(norms, out / f"gradient_norms_T{T}.png",
                               title=f"adding problem, T = {T}: gradient reaching step t")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/long_range"))
    parser.add_argument("--only", default="", help="run only rows whose name contains this")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--table-only", action="store_true",
                        help="rebuild table and plots from the runs already in OUT/runs")
    parser.add_argument("--budget-scale", type=float, default=1.0,
                        help="multiply every row's time budget (e.g. 0.1 for a smoke run)")
    args = parser.parse_args()

    if not args.table_only:
        rows = [replace(c, time_budget_s=c.time_budget_s * args.budget_scale)
                for c in grid() if args.only in c.name]
        # longest budgets first, so the workers finish together
        rows.sort(key=lambda c: -c.time_budget_s)
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            pool.starmap(run_row, [(config, args.out) for config in rows], chunksize=1)
        print(f"grid: {len(rows)} runs in {time.perf_counter() - start:.0f}s wall time")

    runs = load_runs(args.out)
    table = args.out / "table.md"
    table.write_text(format_table(runs))
    plot_task_curves(runs, args.out)
    torch.set_num_threads(1)
    pictures = [gradient_picture(args.out, T) for T in (100, 200)]
    print(f"wrote {table}, {', '.join(map(str, pictures))} and the learning curves")
    print(table.read_text())


if __name__ == "__main__":
    main()
