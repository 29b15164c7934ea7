"""Every task on the one run lifecycle: kill and resume, the lock, overwrite, readers.

Each test runs for every task in tests/support/tasks.py. Training runs as a separate
process so that it can be killed with SIGKILL right after a checkpoint, as a user's
kill lands; the resumed run must give the bit-identical model of an uninterrupted one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SUPPORT = Path(__file__).resolve().parent / "support"
sys.path.insert(0, str(SUPPORT))

from tasks import TASKS, make_task, weights_of, write_data  # noqa: E402

from lstmkit.errors import LstmkitError  # noqa: E402
from lstmkit.io.rundir import open_run, pending_path  # noqa: E402


def train(task: str, data: Path, run_dir: Path, *options: str) -> int:
    """Exit status of one training process (-9 when it was killed)."""
    command = [sys.executable, str(SUPPORT / "run_task.py"), task, str(data), str(run_dir),
               *options]
    return subprocess.run(command, capture_output=True, timeout=300).returncode


def load(task: str, data: Path, run_dir: Path):
    model, _, _ = make_task(task, data)
    return type(model).load(run_dir)


def assert_same_weights(first, second) -> None:
    a, b = weights_of(first), weights_of(second)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module", params=TASKS)
def task_runs(request, tmp_path_factory):
    """(task, data folder, an uninterrupted run of variant 0, one of variant 1)."""
    task = request.param
    root = tmp_path_factory.mktemp(task)
    write_data(task, root / "data")
    for variant in (0, 1):
        assert train(task, root / "data", root / f"whole{variant}", "--variant",
                     str(variant)) == 0
    return task, root / "data", root / "whole0", root / "whole1"


def test_killed_run_resumes_to_the_uninterrupted_model(task_runs, tmp_path):
    task, data, whole, _ = task_runs
    run = tmp_path / "run"
    assert train(task, data, run, "--kill-after", "2") == -9
    with pytest.raises(LstmkitError, match="has not finished"):
        load(task, data, run)
    assert train(task, data, run) != 0  # neither a new run nor an overwrite by mistake
    assert train(task, data, run, "--resume") == 0
    assert_same_weights(load(task, data, run), load(task, data, whole))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_second_writer_is_refused(task_runs, tmp_path):
    task, data, _, _ = task_runs
    model, source, options = make_task(task, data)
    with open_run(tmp_path / "run", model.task):
        with pytest.raises(LstmkitError, match="being written by another lstmkit process"):
            model.fit(source, tmp_path / "run", **options)


def test_interrupted_overwrite_keeps_the_old_run_and_resumes(task_runs, tmp_path):
    task, data, whole0, whole1 = task_runs
    run = tmp_path / "run"
    assert train(task, data, run) == 0
    assert train(task, data, run, "--overwrite", "--variant", "1", "--kill-after", "2") == -9
    assert pending_path(run).is_dir()
    # a reader meanwhile sees the old run, whole
    assert_same_weights(load(task, data, run), load(task, data, whole0))
    # readers while the overwrite finishes and is swapped in: always one run, whole
    old, new = weights_of(load(task, data, whole0)), weights_of(load(task, data, whole1))
    finishing = subprocess.Popen([sys.executable, str(SUPPORT / "run_task.py"), task, str(data),
                                  str(run), "--resume", "--variant", "1"])
    seen = set()
    while finishing.poll() is None or not seen & {"new"}:
        loaded = weights_of(load(task, data, run))
        same = [name for name, weights in (("old", old), ("new", new))
                if all(torch.equal(loaded[key], weights[key]) for key in weights)]
        assert len(same) == 1, "a reader saw files of two runs"
        seen.add(same[0])
        if finishing.poll() is not None and "new" not in seen:
            continue  # the swap happened after this read: read once more
    assert finishing.wait() == 0
    assert_same_weights(load(task, data, run), load(task, data, whole1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left behind


def test_two_processes_train_the_model_of_one(task_runs, tmp_path):
    """torchrun with two processes, each training on its share of every batch, against
    one process (without dropout: two processes draw other masks than one does; the
    experiments draw their own batches, so both processes train the whole model)."""
    task, data, _, _ = task_runs
    assert train(task, data, tmp_path / "one", "--no-dropout") == 0
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", str(SUPPORT / "run_task.py"), task, str(data),
               str(tmp_path / "two"), "--no-dropout"]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    two, one = (weights_of(load(task, data, tmp_path / name)) for name in ("two", "one"))
    for name in one:
        # float sums in another order, through some hundred Adam steps
        torch.testing.assert_close(two[name], one[name], atol=2e-3, rtol=1e-3)
