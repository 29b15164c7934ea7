"""``lstmkit experiment adding|copy|digits``: the long-range dependency experiments.

Trains one model (lstm, gru or rnn at the plain LSTM's parameter budget) on one
task, prints its test metric as it goes and a result line at the end, and writes a
run directory (config.json, model.safetensors, result.json, metrics.json, curve.png)
by the same rules as every task's: locked, resumable, replaced only with --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmkit.cli.options import add_threads_option
from lstmkit.tasks.long_range_choices import LSTM_VARIANTS, MODELS

DEFAULT_RUNS = Path("results/long_range/runs")

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
        sub.add_argument("--cell", default="lstm", metavar="|".join(MODELS),
                         help="the recurrent layer (default lstm)")
        sub.add_argument("--variant", default="plain", metavar="|".join(LSTM_VARIANTS),
                         help="LSTM variant: plain (forget bias 1), forget0 (forget bias 0), "
                              "layer_norm, peephole (default plain)")
        sub.add_argument("--hidden-size", type=int, default=64,
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
        sub.add_argument("--run-dir", type=Path,
                         help=f"run directory to write (default {DEFAULT_RUNS}/NAME, NAME "
                              "such as adding_T100_lstm_plain_s0)")
        sub.add_argument("--overwrite", action="store_true",
                         help="replace a finished run (kept until the new one has finished)")
        sub.add_argument("--resume", action="store_true",
                         help="continue a run that was interrupted (killed or Ctrl-C)")
        sub.add_argument("--quiet", action="store_true", help="print only the result line")
        sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lstmkit.experiment import Experiment, ExperimentConfig

    config = ExperimentConfig(
        task=args.task, model=args.cell, length=getattr(args, "length", 64),
        variant=args.variant, permuted=getattr(args, "permuted", False),
        hidden=args.hidden_size, steps=args.steps, time_budget_s=args.time_budget,
        batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every, seed=args.seed,
    )

    def progress(step: int, seconds: float, metrics: dict[str, float]) -> None:
        if not args.quiet:
            shown = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
            print(f"step {step:6d}  {seconds:7.1f}s  {shown}", flush=True)

    run_dir = args.run_dir or DEFAULT_RUNS / config.name
    result = Experiment(config, progress).fit(None, run_dir, resume=args.resume,
                                              overwrite=args.overwrite)
    print(result_line(config, result))
    print(f"wrote {run_dir}")
    return 0


def result_line(config, result) -> str:
    """One line: what ran, what it reached against the baseline, how long it took."""
    def steps_or_dash(steps: int | None) -> str:
        return "-" if steps is None else str(steps)

    return (f"{config.name}: hidden {result.hidden} ({result.parameters} parameters, "
            f"{result.backend})  test {result.metric_name} {result.final_metric:.4f} "
            f"(baseline {result.baseline:.4f})  beat baseline at step "
            f"{steps_or_dash(result.steps_to_beat_baseline)}, solved at step "
            f"{steps_or_dash(result.steps_to_solve)}  {result.steps} steps in "
            f"{result.seconds:.0f}s ({result.stop_reason})")
