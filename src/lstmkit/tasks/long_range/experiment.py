"""The Experiment task: one long-range experiment on the lifecycle (fit, evaluate, save,
load), its run directory holding the model, the result, the metrics and the curve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from dataclasses import replace as dataclass_replace
from pathlib import Path

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.tasks.lifecycle import Evaluation, Task, config_from_json
from lstmkit.tasks.long_range.config import TASK, ExperimentConfig
from lstmkit.tasks.long_range.models import SequenceModel, build_model
from lstmkit.tasks.long_range.specs import task_spec
from lstmkit.tasks.long_range.training import ExperimentResult, evaluate, run_experiment

MODEL_FILE = "model.safetensors"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.json"
CURVE_FILE = "curve.png"


class Experiment(Task):
    """One long-range experiment on the task lifecycle: fit, evaluate, save, load.

    ``fit`` takes no data (the tasks draw their own); ``evaluate`` measures the test
    set again beside the memoryless baseline.
    """

    task = TASK

    def __init__(self, config: ExperimentConfig,
                 progress: Callable[[int, float, dict[str, float]], None] | None = None
                 ) -> None:
        self.config, self.progress = config, progress
        self.result: ExperimentResult | None = None
        self.model: SequenceModel | None = None

    def _fit(self, data: None, run: Run | None, started: float) -> ExperimentResult:
        if data is not None:
            raise LstmkitError("the long-range experiments draw their own data; pass none")
        if run is not None and run.writer and not run.resumed:
            write_config(run.work, TASK, {"experiment": asdict(self.config)})
        self.result, self.model = run_experiment(
            self.config, self.progress, None if run is None or not run.writer else run.work,
            resume=run is not None and run.resumed, started=started)
        return self.result

    def evaluate(self) -> Evaluation:
        if self.model is None:
            raise LstmkitError("the experiment has not run: call fit or load a run first")
        spec = task_spec(self.config)
        result = dataclass_replace(self.result, final_metrics=evaluate(self.model, spec))
        return result.evaluation()

    def _write(self, directory: Path) -> None:
        from lstmkit.report.curves import plot_curves

        write_config(directory, TASK, {"experiment": asdict(self.config)})
        save_weights(directory / MODEL_FILE, self.model.state_dict())
        atomic_write_json(directory / RESULT_FILE, asdict(self.result))
        atomic_write_json(directory / METRICS_FILE, self.result.evaluation().to_json())
        result, config = self.result, self.config
        plot_curves({f"{config.model} {config.variant}": (
            [point["step"] for point in result.curve],
            [point[result.metric_name] for point in result.curve])},
            directory / CURVE_FILE, xlabel="training step", ylabel=f"test {result.metric_name}",
            baseline=result.baseline, logy=result.metric_name != "accuracy", title=config.name)

    @classmethod
    def _read(cls, run: FinishedRun) -> Experiment:
        config = config_from_json(ExperimentConfig, run.config["experiment"])
        experiment = cls(config)
        spec = task_spec(config)
        weights = run.weights(MODEL_FILE, lambda: build_model(config, spec))
        experiment.model = build_model(config, spec)
        experiment.model.load_state_dict(weights)
        experiment.result = config_from_json(ExperimentResult, run.json(RESULT_FILE),
                                             RESULT_FILE)
        return experiment
