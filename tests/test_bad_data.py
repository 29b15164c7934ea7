"""Bad data is refused with a message naming the column, the rows and the CLI option to use.

Small in-memory tables: non-finite and overflow-size values (forecasting and
classification), daily data that is really business-daily, integer step indices as a
time column, and out-of-range holdouts and backtest steps.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.data.frequency import infer_frequency
from lstmkit.data.labelled_tables import load_sequences
from lstmkit.data.splits import cut_data, rolling_origin_cutoffs
from lstmkit.data.timeseries import ForecastData, load_series
from lstmkit.data.windows import make_prediction_input, make_windows
from lstmkit.errors import LstmkitError

# a message names CLI options, never Python parameters such as time_format= or freq=
PYTHON_PARAMETER = re.compile(r"\b[a-z_]+=")


def refused(pattern: str, function, *args, **kwargs) -> str:
    """The message of the LstmkitError ``function`` raises; it must match ``pattern``."""
    with pytest.raises(LstmkitError, match=pattern) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert not PYTHON_PARAMETER.search(message), message
    return message


def monthly_csv(path, column_values: dict[str, list[str]], periods: int = 8):
    """A CSV of ``periods`` months: column t, then the given columns (text cells)."""
    lines = ["t," + ",".join(column_values)]
    for i, t in enumerate(pd.date_range("2020-01-01", periods=periods, freq="MS")):
        lines.append(f"{t.date()}," + ",".join(v[i] for v in column_values.values()))
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- 1. non-finite and huge values

NUMBERS = [str(float(i)) for i in range(8)]


def with_bad(cells: dict[int, str]) -> list[str]:
    return [cells.get(i, v) for i, v in enumerate(NUMBERS)]


@pytest.mark.parametrize("bad", ["inf", "-inf", "1e308", "-2e200", "1e400"])
@pytest.mark.parametrize("role", ["target", "past covariate", "future covariate"])
def test_forecast_refuses_infinite_and_huge_values(tmp_path, bad, role):
    columns = {"y": NUMBERS, "x": NUMBERS, "f": NUMBERS}
    column = {"target": "y", "past covariate": "x", "future covariate": "f"}[role]
    columns[column] = with_bad({2: bad, 5: bad})
    path = monthly_csv(tmp_path / "d.csv", columns)
    what = "infinite" if float(bad) in (np.inf, -np.inf) else r"value\(s\) larger than 1e\+150"
    message = refused(rf"{role} column '{column}' has 2 {what}", load_series, path, target="y",
                      past_covariates=["x"], future_covariates=["f"])
    assert "at lines 4, 7 of d.csv: " in message  # the offending rows, as file lines


def test_forecast_refuses_huge_values_in_frames_and_wide_layout():
    frame = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=6, freq="D"),
                          "a": np.arange(6.0), "b": [0, 1, np.inf, 3, 4, 5]})
    refused(r"series column 'b' has 1 infinite value\(s\) \(at row 2 of the DataFrame: inf\)",
            load_series, frame, layout="wide")
    frame["b"] = [0, 1, 2, 3, 4, -1e160]
    refused(r"'b' has 1 value\(s\) larger than 1e\+150 in size \(at row 5 .*: -1e\+160\)",
            load_series, frame, target="b", past_covariates=["a"])
    frame["b"] = [0, 1, 2, 3, 4, 1e149]  # large but safe
    assert load_series(frame, target="b").series[0].target[-1] == 1e149


def test_forecast_cli_exits_2_on_infinite_target(tmp_path, capsys):
    path = monthly_csv(tmp_path / "d.csv", {"y": with_bad({3: "inf"})})
    code = main(["forecast", "train", "--data", str(path), "--target", "y", "--horizon", "2",
                 "--window", "3", "--run-dir", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "target column 'y' has 1 infinite value(s) (at line 5 of d.csv: inf)" in err


def test_classification_long_layout_refuses_infinite_and_huge(tmp_path):
    rows = ["id,v,label"] + [f"{i // 3},{i}.5,{'ab'[i // 3 % 2]}" for i in range(9)]
    path = tmp_path / "seq.csv"
    for bad, pattern in (("inf", r"1 value\(s\) that are not finite numbers \(inf at row 5\)"),
                         ("-1e308", r"1 value\(s\) larger than 1e\+15.*-1e\+308 at row 5"),
                         ("2e20", r"larger than 1e\+15 in size \(2e\+20 at row 5\).*power of ten")):
        lines = list(rows)
        lines[5] = f"1,{bad},b"
        path.write_text("\n".join(lines) + "\n")
        message = refused(pattern, load_sequences, path, ["v"], "label", id_column="id")
        assert "column 'v'" in message
    # predict reads its tables the same way, without labels
    unlabelled = pd.DataFrame({"id": [1, 1, 2], "v": [1.0, np.inf, 2.0]})
    refused(r"inf at row 2", load_sequences, unlabelled, ["v"], None, id_column="id",
            label_required=False)


def test_classification_steps_must_be_finite_but_need_not_be_small():
    frame = pd.DataFrame({"id": [1, 1, 2, 2], "step": [0, 1e20, 0, 1], "v": [1.0, 2, 3, 4]})
    assert len(load_sequences(frame, ["v"], None, "id", "step", label_required=False)
               .sequences) == 2
    frame["step"] = [0, np.inf, 0, 1]
    refused(r"column 'step' has 1 value\(s\) that are not finite", load_sequences, frame, ["v"],
            None, "id", "step", label_required=False)


def test_classification_one_row_per_sequence_names_row_and_item(tmp_path):
    jsonl = tmp_path / "seq.jsonl"
    jsonl.write_text('{"v": [1, 2], "label": "a"}\n{"v": [3, 4, 1e300], "label": "b"}\n')
    refused(r"1e\+300 at row 2 item 3", load_sequences, jsonl, ["v"], "label")
    csv = tmp_path / "seq.csv"
    csv.write_text('v,label\n"1 2 3",a\n"4 -inf 5",b\n"1 nan",a\n')
    refused(r"2 value\(s\) that are not finite numbers \(-inf at row 2 item 2, nan at row 3 "
            r"item 2\)", load_sequences, csv, ["v"], "label")


def test_classification_cli_exits_2_on_infinite_values(tmp_path, capsys):
    path = tmp_path / "seq.csv"
    path.write_text("id,v,label\n1,0.5,a\n1,inf,a\n2,1.5,b\n2,1.0,b\n")
    code = main(["classify", "train", "--data", str(path), "--run-dir", str(tmp_path / "run"),
                 "--kind", "numbers", "--value-columns", "v", "--id-column", "id", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "inf at row 2" in err


def test_classifier_refuses_non_finite_sequences_given_as_lists():
    from lstmkit.classify import Classifier, ClassifierConfig, TrainConfig

    frame = pd.DataFrame({"id": [1, 1, 2, 2, 3, 3, 4, 4], "v": [1.0, 2, -1, -2, 1, 3, -3, -1],
                          "label": list("aabbaabb")})
    classifier = Classifier(ClassifierConfig(data="numbers", value_columns=["v"],
                                             id_column="id", hidden_size=4, val_fraction=0.0,
                                             train=TrainConfig(epochs=1, progress=False)))
    classifier.fit(frame)
    with pytest.raises(LstmkitError, match=r"inf at sequence 2 item 2"):
        classifier.predict([[1.0, 2.0], [3.0, np.inf]])
    with pytest.raises(LstmkitError, match=r"larger than 1e\+15"):
        classifier.predict([[1e308]])


# ---------------------------------------------------------------- 2. business days and filling


def closes(days: int = 300, holidays: tuple[int, ...] = (10, 50, 120, 200)) -> pd.DataFrame:
    """Daily closes on business days, without a few holidays."""
    times = pd.bdate_range("2021-01-04", periods=days)
    frame = pd.DataFrame({"date": times.strftime("%Y-%m-%d"),
                          "close": 100 + np.sin(np.arange(days))})
    return frame.drop(index=list(holidays)).reset_index(drop=True)


def test_business_days_are_recognised_and_holidays_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="lstmkit.data"):
        data = load_series(closes(), target="close", time="date")
    (s,) = data.series
    assert data.freq == "B" and len(s) == 300 and s.filled == {"close": 4}
    assert (s.time.day_of_week < 5).all()
    (record,) = [r for r in caplog.records if r.name == "lstmkit.data"]
    assert record.levelno == logging.WARNING
    assert "filled 4 of 300 values (1.3%) of 'close'" in record.getMessage()
    assert "--missing refuse" in record.getMessage()
    # complete business days, and a daily series that has weekends, keep their frequency
    assert infer_frequency(pd.bdate_range("2021-01-04", periods=30)) == "B"
    assert infer_frequency(pd.date_range("2021-01-04", periods=30, freq="D")) == "D"
    future = make_prediction_input(data, 10, 3).times[0]
    assert [t.day_name() for t in future] == ["Monday", "Tuesday", "Wednesday"]


def test_daily_grid_on_business_days_is_refused_with_advice():
    message = refused(r"--freq B", load_series, closes(), target="close", time="date",
                      freq="D")
    assert "(29%)" in message and "no values on Saturdays or Sundays" in message
    assert "--resample" in message


def test_too_many_gaps_are_refused_and_few_are_filled(caplog):
    times = pd.date_range("2020-01-01", periods=20, freq="MS")
    frame = pd.DataFrame({"t": times, "y": np.arange(20.0)})
    refused(r"5 of its 20 values of 'y' \(25%\) are missing on the MS grid \(5 at times "
            r"absent.*--freq.*--resample", load_series, frame.drop(index=[3, 4, 5, 9, 14]))
    refused(r"'y' \(25%\)", load_series, frame.assign(y=frame.y.where(frame.index % 4 != 1)))
    with caplog.at_level(logging.WARNING, logger="lstmkit.data"):
        (s,) = load_series(frame.drop(index=[3, 4, 5, 9])).series  # 20%: filled
    assert s.filled == {"y": 4} and "(20.0%)" in caplog.text
    refused(r"4 missing value\(s\) in column 'y' and --missing refuse.*--missing interpolate",
            load_series, frame.drop(index=[3, 4, 5, 9]), missing="refuse")


def test_covariates_count_towards_the_limit():
    frame = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=10, freq="D"),
                          "y": np.arange(10.0), "x": [1.0, None, None, None, 5, 6, 7, 8, 9, 10]})
    refused(r"3 of its 10 values of 'x' \(30%\)", load_series, frame, target="y",
            past_covariates=["x"])


# ---------------------------------------------------------------- 3. integer step indices


@pytest.mark.parametrize("start", [0, 1])
def test_step_index_is_a_regular_series(tmp_path, start):
    path = tmp_path / "steps.csv"
    path.write_text("step,y\n" + "".join(f"{start + i},{np.sin(i)}\n" for i in range(40)))
    data = load_series(path, target="y", time="step")
    (s,) = data.series
    assert data.freq == "ns" and s.time.dtype == "int64"
    assert s.time[0] == start and len(s) == 40
    assert "step numbers" in data.summary()
    prediction = make_prediction_input(data, 10, 3)
    assert prediction.times[0].tolist() == [start + 40, start + 41, start + 42]
    assert len(make_windows(data, 10, 3)) == 40 - 10
    train, held = cut_data(data, -5)
    assert held.series[0].time.tolist() == list(range(start + 35, start + 40))


def test_step_index_gaps_steps_and_several_series(caplog):
    frame = pd.DataFrame({"id": ["a"] * 10 + ["b"] * 10,
                          "k": [*range(0, 50, 5), *range(0, 50, 5)], "y": np.arange(20.0)})
    frame = frame.drop(index=[3])  # step 15 of series a is absent
    with caplog.at_level(logging.WARNING, logger="lstmkit.data"):
        data = load_series(frame, target="y", time="k", series_id="id")
    assert data.freq == "5ns" and data.series[0].filled == {"y": 1}
    assert data.series[0].target[3] == 3.0 and "1 of 10 values (10.0%)" in caplog.text
    assert make_prediction_input(data, 4, 2).times[1].tolist() == [50, 55]
    sparse = pd.DataFrame({"k": [0, 1, 2, 10, 11, 12], "y": np.arange(6.0)})
    refused(r"7 of its 13 values.*step grid.*give the missing steps", load_series, sparse,
            time="k")


def test_step_index_refuses_calendar_options():
    frame = pd.DataFrame({"k": range(30), "y": np.arange(30.0)})
    for option, kwargs in (("--freq", {"freq": "D"}), ("--resample", {"resample": "W"}),
                           ("--calendar", {"calendar": True})):
        refused(rf"{option} needs dates, but the time column 'k' holds step numbers",
                load_series, frame, time="k", **kwargs)


def test_integer_dates_stay_dates_and_typos_are_named(tmp_path):
    years = pd.DataFrame({"year": range(1990, 2010), "y": np.arange(20.0)})
    assert load_series(years, time="year").series[0].time[0] == pd.Timestamp("1990-01-01")
    path = tmp_path / "d.csv"
    path.write_text("date,y\n19580329,1\n19580405,2\n19580432,3\n19580419,4\n")
    message = refused(r"time value 19580432 in column 'date' at line 4 of d.csv", load_series,
                      path)
    assert "step numbers" in message and "time_format" not in message


# ---------------------------------------------------------------- 4. holdout and backtest options


def test_holdout_and_backtest_messages_name_the_option():
    data = load_series(pd.DataFrame({"t": pd.date_range("2020-01-01", periods=30, freq="D"),
                                     "y": np.arange(30.0)}))
    refused(r"holding out the last 30 points leaves none to train on.*--holdout at most 29",
            cut_data, data, -30)
    for step in (-2, 0):
        refused(rf"--step \(the points from one backtest origin to the next\) must be a whole "
                rf"number of at least 1, got {step}", rolling_origin_cutoffs, 30, 5, 3, step)
    refused(r"--windows .* got -1", rolling_origin_cutoffs, 30, 5, -1)
    refused(r"use at most 5 --windows, a smaller --step", rolling_origin_cutoffs, 30, 5, 9)
    refused(r"lower --window to at most 25", make_windows, data, 40, 5)
    refused(r"--window must be a positive whole number", make_windows, data, -3, 5)


# -------------------------------------------------------- 5. the entry point, after the split


def test_timeseries_still_exports_the_entry_point():
    import lstmkit.data.timeseries as timeseries

    assert timeseries.ForecastData is ForecastData and callable(timeseries.load_series)
