"""Hyperparameter tuning with Optuna, for every task on the shared lifecycle.

    from lstmkit.tune import Tuner

One module per concept: ``space`` (ranges, choices, fixed values; parsed from the command
line or a YAML/JSON file), ``objectives`` (what a trial is for each task and which part of
the data scores it), ``study`` (the study on shared storage, workers, resume, the best
run), ``report`` (study.json, pictures, report.html).
"""

from lstmkit.tuning.space import Param, parse_param, read_space_file
from lstmkit.tuning.study import Tuner, TuningResult, open_storage

__all__ = ["Param", "Tuner", "TuningResult", "open_storage", "parse_param", "read_space_file"]
