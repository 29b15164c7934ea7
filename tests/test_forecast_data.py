"""Forecasting data layer: loading, validation, windows, scaling, splits, metrics."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.data.calendar import calendar_features, default_calendar_features
from lstmkit.data.frequency import infer_frequency
from lstmkit.data.scaling import SeriesScaler, window_statistics
from lstmkit.data.splits import cut_data, cut_series, rolling_origin_cutoffs
from lstmkit.data.timeseries import load_series
from lstmkit.data.windows import make_prediction_input, make_windows
from lstmkit.errors import LstmkitError
from lstmkit.tasks.forecast import metrics as fm

DATASETS = Path(str(resources.files("lstmkit") / "datasets"))
AIRLINE = DATASETS / "airline_passengers.csv"
CO2 = DATASETS / "co2_mauna_loa_weekly.csv"
MACRO = DATASETS / "us_macro_quarterly.csv"


def daily_frame(n: int = 30, series: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    """Long frame: several daily series with a past and a future covariate."""
    rows = []
    for k, name in enumerate(series):
        for i, t in enumerate(pd.date_range("2024-01-01", periods=n, freq="D")):
            rows.append({"store": name, "day": t, "sales": 10.0 * (k + 1) + i,
                         "temp": float(i % 5), "promo": float(i % 2)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- formats and frequency


def test_airline_csv_monthly():
    data = load_series(AIRLINE, target="Passengers")
    (s,) = data.series
    assert data.freq == "MS" and len(s) == 144 and s.time[0] == pd.Timestamp("1949-01-01")
    assert s.target[:3].tolist() == [112, 118, 132]
    assert load_series(AIRLINE).target == "Passengers"  # the only non-time column


def test_co2_weekly_and_macro_quarters():
    assert load_series(CO2, target="co2").freq == "W-SAT"
    macro = load_series(MACRO, target="realgdp", time=["year", "quarter"],
                        past_covariates=["cpi", "unemp"])
    (s,) = macro.series
    assert macro.freq.startswith("QS") and len(s) == 203
    assert s.time[1] == pd.Timestamp("1959-04-01") and s.past_covariates.shape == (203, 2)
    assert fm.seasonality(macro.freq) == 4


def test_parquet_and_dataframe_match_csv(tmp_path):
    frame = pd.read_csv(AIRLINE)
    frame.to_parquet(tmp_path / "air.parquet")
    from_csv = load_series(AIRLINE, target="Passengers").series[0]
    from_parquet = load_series(tmp_path / "air.parquet", target="Passengers").series[0]
    indexed = frame.assign(Date=pd.to_datetime(frame["Date"])).set_index("Date")
    from_frame = load_series(indexed, target="Passengers").series[0]
    for s in (from_parquet, from_frame):
        np.testing.assert_array_equal(s.target, from_csv.target)
        assert (s.time == from_csv.time).all()


def test_long_with_ids_and_covariates():
    data = load_series(daily_frame(), target="sales", time="day", series_id="store",
                       past_covariates=["temp"], future_covariates=["promo"], calendar=True)
    assert data.freq == "D" and data.series_names == ["a", "b"]
    assert [s.series_id for s in data.series] == [0, 1]
    assert data.calendar == ("dayofweek", "dayofyear")
    assert data.feature_names[:3] == ["sales", "temp", "promo"]
    assert data.series[1].target[0] == 20.0


def test_wide_layout():
    data = load_series(MACRO, target=["realgdp", "realcons"], time=["year", "quarter"],
                       layout="wide")
    assert data.series_names == ["realcons", "realgdp"]
    assert data.series[1].target[0] == pytest.approx(2710.349)


def test_infer_frequency_tolerates_missing_timestamps():
    months = pd.date_range("2020-01-31", periods=24, freq="ME")
    assert infer_frequency(months.delete([3, 10])) == "ME"
    weeks = pd.date_range("2020-01-04", periods=20, freq="W-SAT")
    assert infer_frequency(weeks.delete(5)) == "W-SAT"


def test_missing_timestamps_are_inserted_and_filled():
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="D"),
                          "y": np.arange(10.0)}).drop(index=[3, 4])
    (s,) = load_series(frame, target="y").series
    assert s.inserted == 2 and s.filled == {"y": 2}
    np.testing.assert_allclose(s.target, np.arange(10.0))
    with pytest.raises(LstmkitError, match=r"2024-01-04.*absent"):
        load_series(frame, target="y", missing="refuse")


# ---------------------------------------------------------------- gaps and resampling


def test_co2_interpolate_fills_59():
    (s,) = load_series(CO2, target="co2").series
    assert s.filled == {"co2": 59} and not np.isnan(s.target).any()
    raw = pd.read_csv(CO2)["co2"]
    gap = int(np.flatnonzero(raw.isna())[0])  # linear between the neighbours (equal spacing)
    if not np.isnan(raw[gap + 1]):
        assert s.target[gap] == pytest.approx((raw[gap - 1] + raw[gap + 1]) / 2)


def test_co2_refuse_names_rows():
    first = int(np.flatnonzero(pd.read_csv(CO2)["co2"].isna())[0])
    with pytest.raises(LstmkitError) as info:
        load_series(CO2, target="co2", missing="refuse")
    message = str(info.value)
    assert "59 missing" in message and f"line {first + 2} of" in message
    assert "--missing interpolate" in message


def test_edges_are_trimmed_not_gaps():
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=6, freq="D"),
                          "y": [np.nan, 1.0, 2.0, 3.0, np.nan, np.nan]})
    (s,) = load_series(frame, target="y", missing="refuse").series
    assert len(s) == 3 and s.trimmed == 3


def test_resample_weekly_co2_to_monthly_mean():
    data = load_series(CO2, target="co2", resample="MS")
    (s,) = data.series
    assert data.freq == "MS" and s.time[0] == pd.Timestamp("1958-03-01")
    raw = pd.read_csv(CO2)
    april = raw[(raw.date >= 19580401) & (raw.date < 19580501)]["co2"].mean()
    assert s.target[1] == pytest.approx(april)


# ---------------------------------------------------------------- bad input


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "kwargs", "pattern"),
    [
        (lambda d: d / "nope.csv", {}, "file not found"),
        (lambda d: write(d / "empty.csv", ""), {}, "empty"),
        (lambda d: write(d / "head.csv", "t,y\n"), {}, "no data rows"),
        (lambda d: write(d / "x.xlsx", "t,y\n"), {}, "unsupported"),
        (lambda d: AIRLINE, {"target": "sales"}, "available columns: Date, Passengers"),
        (lambda d: AIRLINE, {"target": "Passengers", "past_covariates": ["x"]}, "'x' not found"),
        (lambda d: AIRLINE, {"missing": "drop"}, "interpolate"),
        (lambda d: AIRLINE, {"resample": "fortnight"}, "not a pandas frequency"),
    ],
)
def test_bad_files_and_options(tmp_path, make, kwargs, pattern):
    with pytest.raises(LstmkitError, match=pattern):
        load_series(make(tmp_path), **kwargs)


def test_non_numeric_target_names_value_and_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("t,y\n2024-01-01,1\n2024-01-02,oops\n2024-01-03,3\n")
    with pytest.raises(LstmkitError, match=r"'oops' at line 3 of d.csv"):
        load_series(path, target="y")


def test_unparseable_date_names_value(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("t,y\n2024-01-01,1\n2024-01-02,2\nyesterday,3\n")
    with pytest.raises(LstmkitError, match=r"'yesterday'.*line 4"):
        load_series(path, target="y")


def test_duplicate_timestamps_named_per_series():
    frame = daily_frame(5)
    frame = pd.concat([frame, frame.iloc[[6]]], ignore_index=True)  # repeat a 'b' row
    with pytest.raises(LstmkitError, match=r"series 'b'.*2024-01-02 at rows 6, 10 "):
        load_series(frame, target="sales", time="day", series_id="store")


def test_irregular_off_grid_timestamp():
    times = [*pd.date_range("2024-01-01", periods=8, freq="D"), pd.Timestamp("2024-01-09 12:00")]
    frame = pd.DataFrame({"t": times, "y": np.arange(9.0)})
    with pytest.raises(LstmkitError, match="not on the D grid.*resample"):
        load_series(frame, target="y")
    # daily then monthly: filling the daily grid would invent most of the series
    mixed = pd.date_range("2024-01-01", periods=5, freq="D").append(
        pd.date_range("2024-02-01", periods=5, freq="MS"))
    with pytest.raises(LstmkitError, match="would invent more than 20%"):
        load_series(pd.DataFrame({"t": mixed, "y": np.arange(10.0)}), target="y")


def test_window_horizon_and_length_errors():
    data = load_series(AIRLINE)
    for window, horizon in ((0, 12), (24, -1), (2.5, 3)):
        with pytest.raises(LstmkitError, match="positive"):
            make_windows(data, window, horizon)
    with pytest.raises(LstmkitError, match=r"has 144\).*lower --window to at most 44"):
        make_windows(data, 100, 100)


def test_future_covariates_missing_for_horizon():
    frame = daily_frame(12, ("a",))
    frame.loc[frame.index[-3:], "sales"] = np.nan  # last 3 rows: the known future
    data = load_series(frame, target="sales", time="day", future_covariates=["promo"])
    (s,) = data.series
    assert len(s) == 9 and len(s.future_time) == 3
    assert make_prediction_input(data, 4, 3).future.shape == (1, 3, 1)
    with pytest.raises(LstmkitError, match=r"future rows for 3 of the 5 steps.*2024-01-13"):
        make_prediction_input(data, 4, 5)


# ---------------------------------------------------------------- windows


def test_window_shapes_masks_and_features():
    data = load_series(daily_frame(20), target="sales", time="day", series_id="store",
                       past_covariates=["temp"], future_covariates=["promo"], calendar=True)
    w = make_windows(data, window=5, horizon=3)
    per_series = 20 - 5  # starts 0..14: the last 2 have masked target steps
    assert w.x.shape == (2 * per_series, 5, 1 + 1 + 1 + 4)  # (N, L, F)
    assert w.future.shape == (2 * per_series, 3, 1 + 4)
    assert w.y.shape == w.y_mask.shape == (2 * per_series, 3) and w.y_mask.dtype == torch.bool
    assert w.y_mask[:per_series].sum(1)[-3:].tolist() == [3, 2, 1]
    assert (w.y[~w.y_mask] == 0).all() and w.series_id.tolist() == [0] * 15 + [1] * 15
    # sample 0 of series a: inputs are days 0..4, targets days 5..7
    assert w.x[0, :, 0].tolist() == [10, 11, 12, 13, 14] and w.y[0].tolist() == [15, 16, 17]
    assert w.future[0, :, 0].tolist() == [1.0, 0.0, 1.0]  # promo on days 5..7
    assert len(make_windows(data, 5, 3, mask_trailing=False)) == 2 * (20 - 5 - 3 + 1)


def test_per_window_normalisation_inverts():
    data = load_series(AIRLINE)
    w = make_windows(data, 24, 12, window_center="last", window_scale="std")
    assert torch.allclose(w.x[:, -1, 0], torch.zeros(len(w)), atol=1e-6)
    restored = w.invert(w.y)
    truth = torch.tensor(data.series[0].target[w.origin[0] : w.origin[0] + 12]).float()
    assert torch.allclose(restored[0], truth, rtol=1e-5)
    center, scale = window_statistics(np.array([[1.0, 2.0, 3.0]]), "mean", "meanabs")
    assert center[0] == 2.0 and scale[0] == pytest.approx(2 / 3)


def test_prediction_input_times_and_calendar():
    data = load_series(AIRLINE, calendar=True)
    p = make_prediction_input(data, 24, 12, window_center="mean")
    assert p.x.shape == (1, 24, 3) and p.future.shape == (1, 12, 2)
    assert p.times[0][0] == pd.Timestamp("1961-01-01")
    january = calendar_features(pd.DatetimeIndex(["1961-01-01"]), ["month"])[0]
    np.testing.assert_allclose(p.future[0, 0].numpy(), january, atol=1e-6)
    assert default_calendar_features("W-SAT") == ["week"]


# ---------------------------------------------------------------- scaling and splits


@pytest.mark.parametrize("method", ["standard", "robust", "meanabs", "none"])
def test_scaler_round_trip_and_json(method):
    data = load_series(daily_frame(), target="sales", time="day", series_id="store",
                       past_covariates=["temp"], future_covariates=["promo"])
    scaler = SeriesScaler(method).fit(data, train_end=-5)
    scaled = scaler.transform(data)
    back = scaler.inverse_transform(scaled)
    for original, restored in zip(data.series, back.series, strict=True):
        np.testing.assert_allclose(restored.target, original.target)
        np.testing.assert_allclose(restored.past_covariates, original.past_covariates)
    loaded = SeriesScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(loaded.transform(data).series[1].target, scaled.series[1].target)
    values = np.ones((2, 3))
    ids = np.array([0, 1])
    np.testing.assert_allclose(
        loaded.inverse_target(loaded.transform_target(values, ids), ids), values
    )


def test_scaler_fits_on_training_part_only():
    data = load_series(AIRLINE)
    scaler = SeriesScaler("standard").fit(data, train_end="1958-12-01")
    assert scaler.center[0, 0] == pytest.approx(data.series[0].target[:120].mean())
    scaled = scaler.transform(data).series[0].target
    assert scaled[:120].mean() == pytest.approx(0, abs=1e-9)


def test_rolling_origin_and_cut():
    assert rolling_origin_cutoffs(144, 12, 3) == [108, 120, 132]
    assert rolling_origin_cutoffs(144, 12, 3, step=1) == [130, 131, 132]
    with pytest.raises(LstmkitError, match="at most"):
        rolling_origin_cutoffs(30, 12, 5)
    train, test = cut_series(load_series(AIRLINE).series[0], 132)
    assert len(train) == 132 and len(test) == 12 and test.time[0] == pd.Timestamp("1960-01-01")
    frame = daily_frame(12, ("a",))
    data = load_series(frame, target="sales", time="day", future_covariates=["promo"])
    head, tail = cut_data(data, -4)
    assert len(head.series[0]) == 8 and len(tail.series[0]) == 4
    assert make_prediction_input(head, 4, 4).future[0, :, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


# ---------------------------------------------------------------- metrics and baselines


def test_metrics_hand_computed():
    actual, forecast = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert fm.mae(actual, forecast) == pytest.approx(4 / 3)
    assert fm.rmse(actual, forecast) == pytest.approx(np.sqrt(10 / 3))
    assert fm.smape(actual, forecast) == pytest.approx((200 / 3 + 0 + 120) / 3)
    assert fm.smape([0.0], [0.0]) == 0.0 and fm.smape([1.0], [0.0]) == 200.0
    assert fm.mae(actual, forecast, mask=[True, True, False]) == pytest.approx(0.5)
    assert fm.mae([1.0, np.nan], [2.0, 5.0]) == 1.0  # NaN actuals are skipped
    assert np.isnan(fm.mae(actual, forecast, mask=[False] * 3))
    history = np.array([1.0, 3.0, 2.0, 5.0])  # naive in-sample MAE = (2 + 1 + 3) / 3 = 2
    assert fm.mase(actual, forecast, history) == pytest.approx(2 / 3)
    assert fm.mase(actual, forecast, history, season=2) == pytest.approx((4 / 3) / 1.5)
    lower, upper = np.array([0.0, 2.5, 3.0]), np.array([2.0, 3.0, 5.0])
    assert fm.interval_coverage(actual, lower, upper) == pytest.approx(2 / 3)
    assert fm.interval_width(lower, upper) == pytest.approx((2 + 0.5 + 2) / 3)
    # q=0.9: errors a-f = (-1, 0, 3) -> losses 0.1, 0, 2.7
    assert fm.pinball_loss(actual, forecast, 0.9) == pytest.approx(2.8 / 3)
    both = fm.pinball_loss(actual, np.stack([forecast, forecast], -1), [0.1, 0.9])
    assert both == pytest.approx((1.2 / 3 + 2.8 / 3) / 2)  # q=0.1 losses 0.9, 0, 0.3


def test_baselines_and_seasonality():
    history = np.arange(1.0, 8.0)  # 1..7
    assert fm.naive_forecast(history, 3).tolist() == [7, 7, 7]
    assert fm.seasonal_naive_forecast(history, 5, 3).tolist() == [5, 6, 7, 5, 6]
    assert [fm.seasonality(f) for f in ("MS", "ME", "QS-OCT", "W-SAT", "D", "h", "YS", "2W")] \
        == [12, 12, 4, 52, 7, 24, 1, 26]
    with pytest.raises(LstmkitError, match="season"):
        fm.mase([1.0], [1.0], [1.0, 2.0], season=12)


def test_airline_seasonal_naive_mase_matches_reference():
    target = load_series(AIRLINE).series[0].target
    history, actual = target[:120], target[120:]
    forecast = fm.seasonal_naive_forecast(history, 24, season=12)
    assert fm.mase(actual, forecast, history, season=12) == pytest.approx(2.49, abs=0.05)
