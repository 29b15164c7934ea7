"""Run ``lstmkit tune`` as a separate process, optionally killed in its N-th trial.

    python run_tune.py [--kill-in-trial N] -- TUNE_ARGUMENTS...

``--kill-in-trial N`` sends this process SIGKILL when its N-th trial starts training,
as a user's kill would land mid-trial (the resume test runs the command again).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import torch

from lstmkit.cli import main
from lstmkit.tuning.objectives import ForecastObjective


def kill_in_trial(number: int) -> None:
    trial = ForecastObjective.trial
    calls = {"count": 0}

    def trial_then_die(self, values, run_dir):
        calls["count"] += 1
        if calls["count"] == number:
            os.kill(os.getpid(), signal.SIGKILL)
        return trial(self, values, run_dir)

    ForecastObjective.trial = trial_then_die


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-in-trial", type=int)
    args, rest = parser.parse_known_args()
    torch.set_num_threads(1)
    if args.kill_in_trial:
        kill_in_trial(args.kill_in_trial)
    sys.exit(main(["tune", *[a for a in rest if a != "--"]]))
