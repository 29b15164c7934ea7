"""``lstmkit.experiment``: the long-range dependency experiments (adding, copy, digits).

    from lstmkit.experiment import Experiment, ExperimentConfig

    experiment = Experiment(ExperimentConfig(task="adding", length=100, model="lstm"))
    experiment.fit(run_dir="runs/adding100")
    print(experiment.evaluate().table())
"""

from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.tasks.long_range import Experiment, ExperimentConfig, ExperimentResult, run_experiment

__all__ = ["Evaluation", "Experiment", "ExperimentConfig", "ExperimentResult", "run_experiment"]
