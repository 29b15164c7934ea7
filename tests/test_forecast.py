"""Forecasting end to end: Python API, CLI, bad input, run directories, resume."""

import json

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.errors import LstmkitError
from lstmkit.forecast import ForecastConfig, Forecaster, backtest

FAST = dict(steps=40, hidden_size=8, progress=False)


def seasonal_frame(n=96, series=("a",), start="2010-01-01"):
    """Monthly series with trend and a yearly season, long format."""
    time = pd.date_range(start, periods=n, freq="MS")
    rows = []
    for k, name in enumerate(series):
        t = np.arange(n)
        value = 100 + 10 * k + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12)
        rows.append(pd.DataFrame({"id": name, "month": time, "sales": value,
                                  "promo": (t % 5 == 0).astype(float)}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "sales.csv"
    seasonal_frame().drop(columns=["id"]).to_csv(path, index=False)
    return path


def run_cli(*args):
    return main([str(a) for a in args])


def test_fit_predict_evaluate_save_load(tmp_path):
    frame = seasonal_frame(series=("a", "b"))
    config = ForecastConfig(target="sales", time="month", series_id="id", horizon=6, window=24,
                            calendar=True, **FAST)
    model = Forecaster(config).fit(frame)
    forecast = model.predict(frame)
    assert list(forecast.columns) == ["series", "time", "forecast", "q0.1", "q0.5", "q0.9"]
    assert len(forecast) == 12 and set(forecast["series"]) == {"a", "b"}
    assert forecast["time"].iloc[0] == pd.Timestamp("2018-01-01")
    assert (forecast["q0.1"] <= forecast["q0.9"]).all()
    scores = model.evaluate(frame, holdout=6)
    assert set(scores.rows) == {"model", "naive", "seasonal_naive"}
    assert scores["model"]["MASE"] < scores["naive"]["MASE"]  # a trend beats repeating the last
    model.save(tmp_path / "run")
    again = Forecaster.load(tmp_path / "run")
    pd.testing.assert_frame_equal(again.predict(frame), forecast)


def test_learns_a_seasonal_series_better_than_seasonal_naive():
    frame = seasonal_frame(n=120)
    config = ForecastConfig(target="sales", time="month", horizon=12, window=24, steps=200,
                            progress=False)
    data = config.load(frame)
    from lstmkit.data.splits import cut_data

    model = Forecaster(config).fit(cut_data(data, -12)[0])
    scores = model.evaluate(data, holdout=12)
    assert scores["model"]["MASE"] < scores["seasonal_naive"]["MASE"]


def test_recursive_strategy_and_future_covariates():
    frame = seasonal_frame()
    future_rows = pd.DataFrame({"month": pd.date_range("2018-01-01", periods=6, freq="MS"),
                                "sales": np.nan, "promo": 1.0})
    frame = pd.concat([frame.drop(columns=["id"]), future_rows], ignore_index=True)
    config = ForecastConfig(target="sales", time="month", horizon=6, window=12,
                            future_covariates=["promo"], strategy="recursive", **FAST)
    forecast = Forecaster(config).fit(frame).predict(frame)
    assert len(forecast) == 6 and np.isfinite(forecast["forecast"]).all()


def test_ensemble_is_the_median_of_members():
    frame = seasonal_frame()
    config = ForecastConfig(target="sales", time="month", horizon=3, window=12, ensemble=3,
                            **FAST)
    model = Forecaster(config).fit(frame)
    assert len(model.members) == 3
    combined, _ = model.forecast_quantiles(frame)
    members = model.members
    singles = []
    for net in members:
        model.members = [net]
        singles.append(model.forecast_quantiles(frame)[0])
    model.members = members
    np.testing.assert_allclose(combined[..., 1], np.median(np.stack(singles), axis=0)[..., 1],
                               rtol=1e-5)


def test_backtest_reports_model_and_baselines_per_window():
    config = ForecastConfig(target="sales", time="month", horizon=6, window=12, **FAST)
    report = backtest(config, seasonal_frame(), windows=3)
    assert len(report.details["windows"]) == 3 and len(report.details["fit_seconds"]) == 1
    assert report.details["cutoffs"] == ["2016-06-01", "2016-12-01", "2017-06-01"]
    assert 0 <= report["model"]["coverage"] <= 1
    refit = backtest(config, seasonal_frame(), windows=2, refit=True)
    assert len(refit.details["fit_seconds"]) == 2


def test_cli_train_predict_evaluate_plot(tmp_path, csv, capsys):
    out = tmp_path / "run"
    assert run_cli("forecast", "train", "--data", csv, "--target", "sales", "--horizon", 6,
                   "--window", 12, "--steps", 30, "--hidden-size", 8, "--holdout", 6,
                   "--run-dir", out, "--quiet", "--layer-norm") == 0
    printed = capsys.readouterr().out
    assert "seasonal naive (m=12)" in printed and "lstmkit LSTM" in printed
    for name in ("config.json", "model.safetensors", "scaler.json", "metrics.json", "manifest.json",
                 "report.html", "forecast.png", "gates.png", "training.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["task"] == "forecast"
    assert (out / "members" / "0" / "log.csv").is_file()

    assert run_cli("forecast", "predict", "--run-dir", out, "--data", csv, "--output",
                   tmp_path / "f.csv") == 0
    predicted = pd.read_csv(tmp_path / "f.csv")
    assert len(predicted) == 6 and "q0.9" in predicted
    assert run_cli("forecast", "evaluate", "--run-dir", out, "--data", csv) == 0
    assert "MASE" in capsys.readouterr().out
    assert run_cli("forecast", "plot", "--run-dir", out, "--data", csv, "--holdout", 6,
                   "--output-dir", tmp_path / "plots") == 0
    assert (tmp_path / "plots" / "report.html").is_file()
    # outputs never go into the model's run directory
    assert run_cli("forecast", "plot", "--run-dir", out, "--data", csv, "--output-dir",
                   out, "--overwrite") == 2
    assert run_cli("forecast", "predict", "--run-dir", out, "--data", csv, "--output",
                   out / "f.csv") == 2
    assert "points into the model's run directory" in capsys.readouterr().err
    assert (out / "model.safetensors").is_file()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_INPUTS = [
    ("missing file", lambda p: p / "nope.csv", [], "not found|does not exist|No such"),
    ("empty file", lambda p: write(p, "e.csv", ""), [], "empty"),
    ("unknown column", None, ["--target", "revenue"], "revenue"),
    ("non-numeric target", lambda p: write(p, "t.csv", "month,sales\n2020-01-01,1\n"
                                           "2020-02-01,abc\n"), [], "abc"),
    ("duplicate timestamps", lambda p: write(p, "d.csv", "month,sales\n2020-01-01,1\n"
                                             "2020-01-01,2\n2020-02-01,3\n"), [], "duplicate"),
    ("unparseable dates", lambda p: write(p, "u.csv", "month,sales\nsoon,1\nlater,2\n"), [],
     "soon|parse"),
    ("series too short", None, ["--window", "200"], "window"),
    ("horizon not positive", None, ["--horizon", "0"], "horizon"),
    ("window not positive", None, ["--window", "-3"], "window"),
    ("covariates missing for the horizon", None, ["--future-covariates", "promo"], "promo"),
    ("gaps under refuse", lambda p: write(p, "g.csv", "month,sales\n2020-01-01,1\n2020-02-01,\n"
                                          "2020-03-01,3\n" + "".join(
                                              f"2021-{m:02d}-01,{m}\n" for m in range(1, 13))),
     ["--missing", "refuse"], "refuse|missing"),
]


@pytest.mark.parametrize("name, make, extra, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_cli_bad_input_exits_2_with_message(tmp_path, csv, capsys, name, make, extra, message):
    data = make(tmp_path) if make else csv
    args = ["forecast", "train", "--data", data, "--target", "sales", "--horizon", 6,
            "--window", 12, "--steps", 5, "--run-dir", tmp_path / "run", "--quiet"]
    options = dict(zip(args[::2], args[1::2]))
    for flag, value in zip(extra[::2], extra[1::2]):
        options[flag] = value
    argv = [x for pair in options.items() for x in pair]
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmkit: error:") and "Traceback" not in err
    import re

    assert re.search(message, err, re.IGNORECASE), err
    assert not (tmp_path / "run").exists()


def test_existing_run_is_never_overwritten_without_flag_nor_by_a_failed_run(tmp_path, csv,
                                                                            capsys):
    out = tmp_path / "run"
    common = ["forecast", "train", "--data", csv, "--target", "sales", "--horizon", 6,
              "--window", 12, "--steps", 10, "--hidden-size", 8, "--run-dir", out, "--quiet"]
    assert run_cli(*common) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert run_cli(*common) == 2
    assert "--overwrite" in capsys.readouterr().err
    # a run that fails on its data leaves the old run as it was
    bad = write(tmp_path, "bad.csv", "month,sales\n2020-01-01,x\n")
    assert run_cli(*[bad if a == csv else a for a in common], "--overwrite") == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_model_directory_incomplete_or_foreign(tmp_path, csv, capsys):
    (tmp_path / "empty").mkdir()
    assert run_cli("forecast", "predict", "--run-dir", tmp_path / "empty", "--data", csv) == 2
    assert "not an lstmkit run directory" in capsys.readouterr().err
    assert run_cli("forecast", "predict", "--run-dir", tmp_path / "none", "--data", csv) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_option_values_are_user_errors(csv):
    with pytest.raises(LstmkitError, match="quantiles"):
        ForecastConfig(horizon=3, quantiles=[0.1, 0.9])
    with pytest.raises(LstmkitError, match="zoneout"):
        Forecaster(ForecastConfig(target="sales", horizon=3, window=6, steps=1,
                                  lstm_options={"zoneout": 2.0})).fit(csv)


@pytest.mark.parametrize("steps, batch_size", [(137, 32), (800, 7)])
def test_trains_exactly_the_steps_asked_for(steps, batch_size):
    config = ForecastConfig(target="sales", time="month", horizon=6, window=12, steps=steps,
                            batch_size=batch_size, hidden_size=4, progress=False)
    model = Forecaster(config).fit(seasonal_frame(n=60))
    assert model.histories[0][-1]["step"] == steps
