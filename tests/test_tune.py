"""Tuning: search spaces, the study on shared storage (two workers, resume after a kill,
PostgreSQL), the best run and the report, and the bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.errors import LstmkitError
from lstmkit.forecast import ForecastConfig, Forecaster
from lstmkit.tune import Param, Tuner, parse_param, read_space_file

SUPPORT = Path(__file__).resolve().parent / "support"


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("series") / "sales.csv"
    months = pd.date_range("2010-01-01", periods=72, freq="MS")
    t = np.arange(72)
    sales = 100 + t + 10 * np.sin(2 * np.pi * t / 12)
    pd.DataFrame({"month": months, "sales": sales}).to_csv(path, index=False)
    return path


# the task's options, and a small space: trials of well under a second
TASK = ["--target", "sales", "--horizon", "6", "--window", "12", "--steps", "30",
        "--hidden-size", "4", "--quiet"]
SPACE = ["--param", "steps=20:40", "--param", "hidden_size=4:8", "--param", "ensemble=1",
         "--param", "window=12", "--param", "skip=true", "--param", "window_center=last",
         "--param", "window_scale=std"]


def tune(series: Path, study: Path, *extra: str, trials: int = 3) -> list[str]:
    return ["forecast", "--data", str(series), *TASK, *SPACE, "--study-dir", str(study),
            "--trials", str(trials), *extra]


def run_worker(arguments: list[str], kill_in_trial: int | None = None
               ) -> subprocess.Popen:
    command = [sys.executable, str(SUPPORT / "run_tune.py")]
    if kill_in_trial:
        command += ["--kill-in-trial", str(kill_in_trial)]
    return subprocess.Popen([*command, "--", *arguments], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def trials_of(study: Path, storage: str | None = None) -> list:
    import optuna

    storage = storage or f"sqlite:///{study / 'study.db'}"
    return optuna.load_study(study_name=study.name, storage=storage).trials


# --- search spaces --------------------------------------------------------------------------


def test_parameters_from_the_command_line():
    assert parse_param("hidden_size=8:128") == ("hidden_size", Param("hidden_size", 8, 128,
                                                                     whole=True))
    assert parse_param("lr=1e-4:1e-2:log")[1] == Param("lr", 1e-4, 1e-2, log=True)
    assert parse_param("pooling=mean,attention")[1].choices == ("mean", "attention")
    assert parse_param("skip=true,false")[1].choices == (True, False)
    assert parse_param("dropout=0.1") == ("dropout", 0.1)
    for bad, message in (("lr=1e-2:1e-4", "empty or backwards"), ("lr=0:1:log", "log scale"),
                         ("hidden", "is not NAME=SPEC"), ("lr=1:2:3", "LOW:HIGH:log"),
                         ("lr=a:b", "must be numbers")):
        with pytest.raises(LstmkitError, match=message):
            parse_param(bad)


def test_space_files(tmp_path):
    (tmp_path / "space.yaml").write_text(
        "hidden_size: [8, 64]\nlr: {low: 0.001, high: 0.1, log: true}\n"
        "pooling: {choices: [mean, max]}\ndropout: 0.2\n")
    space = read_space_file(tmp_path / "space.yaml")
    assert space["hidden_size"] == Param("hidden_size", 8, 64, whole=True)
    assert space["lr"].log and space["pooling"].choices == ("mean", "max")
    assert space["dropout"] == 0.2
    (tmp_path / "space.json").write_text(json.dumps({"lr": [0.001, 0.01]}))
    assert read_space_file(tmp_path / "space.json")["lr"] == Param("lr", 0.001, 0.01)
    (tmp_path / "bad.yaml").write_text("lr: [1, 2, 3]\n")
    with pytest.raises(LstmkitError, match="must be \\[LOW, HIGH\\]"):
        read_space_file(tmp_path / "bad.yaml")


def test_a_bad_space_is_refused_before_anything_runs(series, tmp_path):
    config = ForecastConfig(target="sales", horizon=6, window=12, progress=False)
    with pytest.raises(LstmkitError, match="cannot tune \\['bogus'\\]"):
        Tuner("forecast", config, series, space={"bogus": Param("bogus", 1, 2)})
    with pytest.raises(LstmkitError, match="the search space is empty"):
        Tuner("forecast", config, series, space={n: 1 for n in (
            "hidden_size", "lr", "steps", "skip", "window_center", "window_scale",
            "ensemble", "window")})
    with pytest.raises(LstmkitError, match="hidden_size=0 .* is not a valid option"):
        Tuner("forecast", config, series, space={"hidden_size": Param("hidden_size", 0, 8,
                                                                      whole=True)})
    assert not list(tmp_path.iterdir())


# --- a study --------------------------------------------------------------------------------


def test_a_study_writes_the_best_run_and_its_report(series, tmp_path, capsys):
    study = tmp_path / "study"
    assert main(["tune", *tune(series, study)]) == 0
    out = capsys.readouterr().out
    assert "forecast study: 3 complete" in out and "untuned default" in out
    trials = trials_of(study)
    assert trials[0].user_attrs.get("untuned") and len(trials) == 3
    summary = json.loads((study / "study.json").read_text())
    assert summary["best_value"] == min(t.value for t in trials)
    assert summary["untuned_value"] == trials[0].value
    assert "never seen while tuning" in summary["chosen_on"]
    best = Forecaster.load(study / "best")  # a normal run directory
    assert best.config.hidden_size == summary["best_options"]["hidden_size"]
    assert len(best.predict(series)) == 6
    assert "test MASE" in summary["best_run"]
    for name in ("report.html", "history.png"):
        assert (study / name).is_file()
    assert main(["tune", "report", "--study-dir", str(study)]) == 0
    assert f"best: trial {summary['best_trial']}" in capsys.readouterr().out


def test_a_killed_worker_resumes_the_study(series, tmp_path):
    study = tmp_path / "study"
    killed = run_worker(tune(series, study, trials=4), kill_in_trial=3)
    killed.communicate(timeout=300)
    assert killed.returncode == -9
    states = [t.state.name for t in trials_of(study)]
    assert states == ["COMPLETE", "COMPLETE", "RUNNING"]
    again = run_worker(tune(series, study, trials=4))
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    trials = trials_of(study)
    orphan = trials[2]
    assert orphan.state.name == "FAIL" and orphan.user_attrs["orphaned"]
    finished = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(finished) == 4 and finished[2].params == orphan.params  # run again
    assert (study / "best").exists()


def assert_two_workers_share_the_study(series, study: Path, storage: str | None) -> None:
    extra = [] if storage is None else ["--storage", storage]
    workers = [run_worker(tune(series, study, *extra, trials=6)) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = trials_of(study, storage)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))) and len(trials) in (6, 7)
    assert all(t.state.name == "COMPLETE" for t in trials)
    workers_seen = {t.user_attrs["worker"] for t in trials}
    assert len(workers_seen) == 2  # both took part
    summary = json.loads((study / "study.json").read_text())
    best = min(trials, key=lambda t: (t.value, t.number))
    assert summary["best_trial"] == best.number
    refits = list((study / "trials").glob("*-best"))
    assert [p.name for p in refits] == [f"{best.number:04d}-best"]  # written once
    assert (study / "best").resolve() == refits[0].resolve()


def test_two_workers_share_one_sqlite_study(series, tmp_path):
    assert_two_workers_share_the_study(series, tmp_path / "study", None)


def _postgres_binaries() -> Path | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


@pytest.fixture
def postgres():
    """A PostgreSQL server of its own, started for the test and stopped after it."""
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; "
                    "make setup installs it when run as root)")
    # outside pytest's folders, which only their owner may enter
    home = Path(tempfile.mkdtemp(prefix="lstmkit-pg-"))
    data = home / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as postgres
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
        home.chmod(0o777)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = subprocess.run(
        [*as_user, str(binaries / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        capture_output=True, text=True)
    if started.returncode:
        pytest.skip(f"initdb failed: {started.stderr.strip()[-300:]}")
    server = subprocess.run(
        [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
         "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
        capture_output=True, text=True)
    if server.returncode:
        pytest.skip(f"PostgreSQL did not start: {server.stderr.strip()[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(series, tmp_path, postgres):
    assert_two_workers_share_the_study(series, tmp_path / "study", postgres)


def test_an_unreachable_database_is_a_clear_error(series, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://user:secret@127.0.0.1:{port}/optuna"
    started = time.monotonic()
    assert main(["tune", *tune(series, tmp_path / "study", "--storage", url)]) == 2
    assert time.monotonic() - started < 60
    assert not (tmp_path / "study").exists()  # nothing half-written


def test_a_study_of_another_task_is_refused(series, tmp_path, capsys):
    import optuna

    study = tmp_path / "study"
    study.mkdir()
    storage = f"sqlite:///{study / 'study.db'}"
    optuna.create_study(study_name="study", storage=storage).set_user_attr("task", "lm")
    assert main(["tune", *tune(series, study)]) == 2
    assert "holds lm trials, not forecast" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--param", "bogus=1:2"], "cannot tune ['bogus']"),
    (["--param", "lr=0.1:0.01"], "is empty or backwards"),
    (["--param", "steps=0:10"], "--steps must be a positive integer"),
    (["--trials", "0"], "--trials must be a whole number of at least 1"),
])
def test_bad_search_options_exit_2_and_write_nothing(series, tmp_path, capsys, extra, message):
    assert main(["tune", *tune(series, tmp_path / "study", *extra)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "study").exists()


def test_report_of_no_study(tmp_path, capsys):
    assert main(["tune", "report", "--study-dir", str(tmp_path)]) == 2
    assert "holds no finished study" in capsys.readouterr().err


def test_a_classification_study_prunes_on_validation_loss(tmp_path):
    sys.path.insert(0, str(SUPPORT))
    from tasks import write_data

    from lstmkit.classify import Classifier, ClassifierConfig
    from lstmkit.train import TrainConfig

    write_data("classify", tmp_path / "data")
    config = ClassifierConfig(embedding_dim=8, hidden_size=8, train=TrainConfig(
        epochs=3, batch_size=16, patience=None, progress=False))
    tuner = Tuner("classify", config, tmp_path / "data" / "data.csv", {},
                  space={"hidden_size": Param("hidden_size", 4, 8, whole=True),
                         "embedding_dim": 8})
    result = tuner.run(tmp_path / "study", trials=3)
    assert result.metric == "validation loss" and sum(result.states.values()) == 3
    best = Classifier.load(tmp_path / "study" / "best")  # the best trial's own run
    assert best.config.hidden_size == result.best_options["hidden_size"]
    assert "stratified" in json.loads((tmp_path / "study" / "study.json").read_text())[
        "chosen_on"]
