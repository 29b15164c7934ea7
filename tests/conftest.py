"""Shared test set-up."""

import sys
from pathlib import Path

import pytest
import torch

# The test models are tiny: one thread avoids OpenMP contention on a busy 2-core machine.
torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """trained_run(task) -> the run directory of that task's tiny model, trained once per
    test session (tests/support/tasks.py has the models and their data)."""
    from tasks import make_task, write_data

    root = tmp_path_factory.mktemp("trained")
    runs: dict[str, Path] = {}

    def run_of(task: str) -> Path:
        if task not in runs:
            write_data(task, root / f"{task}-data")
            model, source, options = make_task(task, root / f"{task}-data")
            model.fit(source, root / task, **options)
            runs[task] = root / task
        return runs[task]

    return run_of
