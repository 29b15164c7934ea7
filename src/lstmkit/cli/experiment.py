"""``lstmkit experiment adding|copy|digits``: the long-range dependency experiments.

Trains one model (lstm, gru or rnn at the plain LSTM's parameter budget) on one
task, prints its test metric as it goes and a result line at the end, and writes
``NAME.json`` and the learning curve ``NAME.png`` into the results folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmkit.cli.options import add_threads_option
from lstmkit.tasks.long_range import (
    LSTM_VARIANTS,
    MODELS,
    ExperimentConfig,
    ExperimentResult,
    run_experiment,
)

DEFAULT_OUT = Path("results/long_range/runs")

TASK_HELP = {
    "adding": "sum the two marked values of a length-T sequence (baseline MSE 1/6)",
    "copy": "recall 10 symbols after a delay of T (baseline CE 10 log 8 / (T + 20))",
    "digits": "classify 8x8 digits read one pixel per step (64 steps)",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment", help="long-range dependency experiments: LSTM against GRU and plain RNN",
        description="Train LSTM, GRU or plain RNN (at equal parameter budget) on a "
                    "long-range dependency task and write results JSON and a learning curve.",
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for task, help_text in TASK_HELP.items():
        sub = tasks.add_parser(task, help=help_text, description=help_text)
        if task == "digits":
            sub.add_argument("--permuted", action="store_true",
                             help="read the pixels in one fixed random order")
        else:
            sub.add_argument("--length", "-T", type=int, required=True, metavar="T",
                             help="sequence length (adding) or delay (copy)")
        sub.add_argument("--model", default="lstm", metavar="|".join(MODELS),
                         help="the recurrent layer (default lstm)")
        sub.add_argument("--variant", default="plain", metavar="|".join(LSTM_VARIANTS),
                         help="LSTM variant: plain (forget bias 1), forget0 (forget bias 0), "
                              "layer_norm, peephole (default plain)")
        sub.add_argument("--hidden", type=int, default=64,
                         help="LSTM hidden size; it sets the parameter budget that the GRU "
                              "and RNN are sized to (default 64)")
        sub.add_argument("--steps", type=int, default=20_000,
                         help="most training steps (default 20000)")
        sub.add_argument("--time-budget", type=float, default=600.0, metavar="S",
                         help="stop training after S seconds (default 600)")
        sub.add_argument("--batch-size", type=int, default=32)
        sub.add_argument("--lr", type=float, default=None,
                         help="Adam learning rate (default 1e-2 for adding, 3e-3 otherwise)")
        sub.add_argument("--eval-every", type=int, default=100,
                         help="steps between test measurements (default 100)")
        sub.add_argument("--seed", type=int, default=0)
        add_threads_option(sub)
        sub.add_argument("--out", type=Path, default=DEFAULT_OUT,
                         help=f"results folder (default {DEFAULT_OUT})")
        sub.add_argument("--quiet", action="store_true", help="print only the result line")
        sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:

    config = ExperimentConfig(
        task=args.task, model=args.model, length=getattr(args, "length", 64),
        variant=args.variant, permuted=getattr(args, "permuted", False), hidden=args.hidden,
        steps=args.steps, time_budget_s=args.time_budget, batch_size=args.batch_size,
        lr=args.lr, eval_every=args.eval_every, seed=args.seed,
    )

    def progress(step: int, seconds: float, metrics: dict[str, float]) -> None:
        if not args.quiet:
            shown = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
            print(f"step {step:6d}  {seconds:7.1f}s  {shown}", flush=True)

    result, _ = run_experiment(config, progress)
    json_path, curve_path = write_run(config, result, args.out)
    print(result_line(config, result))
    print(f"wrote {json_path} and {curve_path}")
    return 0


def write_run(config: ExperimentConfig, result: ExperimentResult, out: Path) -> tuple[Path, Path]:
    """Write NAME.json and the learning curve NAME.png into out; returns both paths."""
    from lstmkit.report.curves import plot_curves

    json_path = result.save(out, config.name)
    curve_path = plot_curves(
        {f"{config.model} {config.variant}": (
            [point["step"] for point in result.curve],
            [point[result.metric_name] for point in result.curve])},
        out / f"{config.name}.png", xlabel="training step",
        ylabel=f"test {result.metric_name}", baseline=result.baseline,
        logy=result.metric_name != "accuracy", title=config.name,
    )
    return json_path, curve_path


def result_line(config: ExperimentConfig, result: ExperimentResult) -> str:
    """One line: what ran, what it reached against the baseline, how long it took."""
    def steps_or_dash(steps: int | None) -> str:
        return "-" if steps is None else str(steps)

    return (f"{config.name}: hidden {result.hidden} ({result.parameters} parameters, "
            f"{result.backend})  test {result.metric_name} {result.final_metric:.4f} "
            f"(baseline {result.baseline:.4f})  beat baseline at step "
            f"{steps_or_dash(result.steps_to_beat_baseline)}, solved at step "
            f"{steps_or_dash(result.steps_to_solve)}  {result.steps} steps in "
            f"{result.seconds:.0f}s ({result.stop_reason})")
