"""Financial forecasting: prices in, features and targets by hand, the walk-forward plan,
no look-ahead end to end, resume, baselines, and the commands."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.cli import main
from lstmkit.data.market_features import ewma_variance, forward_sum, market_features, targets
from lstmkit.data.prices import read_prices
from lstmkit.errors import LstmkitError, RunInterrupted
from lstmkit.finance import FinanceConfig, FinanceModel, TrainConfig
from lstmkit.tasks.finance.baselines import garch_variance
from lstmkit.tasks.finance.scoring import positions
from lstmkit.tasks.finance.walk_forward import plan_folds

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
from tasks import price_frame  # noqa: E402


def small_config(**options) -> FinanceConfig:
    train = TrainConfig(epochs=2, batch_size=32, patience=None, progress=False)
    settings = dict(window=10, hidden_size=4, validation_days=40, train_days=200,
                    refit_every=40, refit_epochs=1, train=train)
    return FinanceConfig(**{**settings, **options})


# --- prices in ------------------------------------------------------------------------------


def test_long_and_wide_tables_give_the_same_panel(tmp_path):
    frame = price_frame(days=30)
    frame.to_csv(tmp_path / "long.csv", index=False)
    wide = frame.pivot(index="date", columns="symbol", values="close").reset_index()
    wide.to_csv(tmp_path / "wide.csv", index=False)
    long_panel, wide_panel = (read_prices(tmp_path / name) for name in ("long.csv", "wide.csv"))
    assert long_panel.assets == wide_panel.assets == ["A0", "A1"]
    np.testing.assert_allclose(long_panel.close, wide_panel.close)
    assert long_panel.fields == ["open", "high", "low", "volume"] and wide_panel.fields == []
    assert len(long_panel.dates) == 30


def test_assets_are_aligned_on_the_days_they_all_traded(tmp_path):
    frame = price_frame(days=20, assets=1)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.drop(index=[3, 4]).assign(symbol="B").to_csv(tmp_path / "b.csv", index=False)
    panel = read_prices([tmp_path / "a.csv", tmp_path / "b.csv"], asset_column="symbol")
    assert panel.assets == ["A0", "B"] and len(panel.dates) == 18
    # a gap is one trading step: the return over it is the whole move, not interpolated
    returns = panel.log_returns()
    assert returns[3, 0] == pytest.approx(np.log(frame.close[5] / frame.close[2]))


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(close=f.close.where(f.index != 7, -1.0)),
     "close value(s) in column 'close' are empty or not positive (-1 at line 9"),
    (lambda f: f.assign(close=f.close.where(f.index != 7, np.nan)), "are empty or not positive"),
    (lambda f: f.assign(date=f.date.where(f.index != 8, f.date[7])), "repeated date(s)"),
    (lambda f: f.iloc[[0, 2, 1, 3, 4, 5]], "dates go backwards: 2015-01-02 at line 4"),
    (lambda f: f.assign(volume=-f.volume), "volume value(s) in column 'volume' are empty or "
                                           "not zero or more"),
    (lambda f: f.assign(date=range(len(f))), "holds step numbers, not dates"),
])
def test_bad_prices_are_named(tmp_path, change, message):
    change(price_frame(days=10, assets=1)).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(LstmkitError) as error:
        read_prices(tmp_path / "p.csv")
    assert message in str(error.value)


def test_arch_data_sets_are_read_from_the_installed_package():
    panel = read_prices("arch:sp500")
    assert panel.assets == ["sp500"] and panel.fields == ["open", "high", "low", "volume"]
    assert str(panel.dates[0].date()) == "1999-01-04" and len(panel.dates) > 5000
    oil = read_prices("arch:wti")
    assert oil.assets == ["wti"] and oil.fields == [] and np.isfinite(oil.close).all()
    with pytest.raises(LstmkitError, match="arch:sp500, arch:nasdaq, arch:wti"):
        read_prices("arch:dax")


# --- features and targets -------------------------------------------------------------------


def test_targets_by_hand():
    frame = price_frame(days=8, assets=2).pivot(index="date", columns="symbol", values="close")
    frame.index = pd.to_datetime(frame.index)
    panel = read_prices(frame.reset_index())
    r = np.log(frame.to_numpy()[1:] / frame.to_numpy()[:-1])  # r[t-1] = r_t
    ahead = targets(panel, "return", 2)
    assert ahead[0, 1] == pytest.approx(r[0, 1] + r[1, 1])  # r_1 + r_2 at origin 0
    assert np.isnan(ahead[-2:]).all()
    variance = targets(panel, "volatility", 2)
    assert variance[3, 0] == pytest.approx(r[3, 0] ** 2 + r[4, 0] ** 2)
    relative = targets(panel, "cross_section", 1)
    assert relative[2, 0] == pytest.approx((r[2, 0] - r[2, 1]) / 2)  # median of two: mean
    assert forward_sum(np.arange(5.0)[:, None], 1)[:, 0].tolist()[:4] == [1, 2, 3, 4]


def test_features_see_nothing_after_their_day():
    panel = read_prices(price_frame(days=120))
    altered = read_prices(price_frame(days=120).assign(
        close=lambda f: f.close * np.where(pd.to_datetime(f.date) >= "2015-03-02", 1.3, 1.0)))
    day = int(np.searchsorted(panel.dates.values, np.datetime64("2015-03-02")))
    names = ["return", "range", "gap", "volume", "volatility_5", "volatility_21",
             "momentum_21"]
    before, after = market_features(panel, names), market_features(altered, names)
    np.testing.assert_array_equal(before[:day], after[:day])
    assert not np.allclose(before[day:], after[day:], equal_nan=True)
    sigma = ewma_variance(panel.log_returns())
    r = panel.log_returns()
    assert sigma[30, 0] == pytest.approx(0.94 * sigma[29, 0] + 0.06 * r[30, 0] ** 2)


# --- the walk-forward plan ------------------------------------------------------------------


def test_every_fold_keeps_the_purge_gap_and_the_tests_tile_the_period():
    dates = pd.bdate_range("2010-01-01", periods=900).values
    folds = plan_folds(dates, first=30, horizon=3, purge=5, train_days=300,
                       validation_days=50, refit_every=40, test_start=None)
    tested = np.concatenate([fold.test for fold in folds])
    np.testing.assert_array_equal(tested, np.arange(tested[0], len(dates) - 3))
    for fold in folds:
        assert fold.fit[-1] + 3 <= fold.validation[0]  # fitted targets end before validation
        assert fold.validation[-1] + 3 + 5 <= fold.test[0]  # known 5 days before the test
        assert len(fold.fit) + len(fold.validation) <= 300
        assert len(fold.test) <= 40


def test_too_little_history_and_no_test_days_are_refused():
    dates = pd.bdate_range("2010-01-01", periods=400).values
    with pytest.raises(LstmkitError, match="too little history for the first training window"):
        plan_folds(dates, first=30, horizon=1, purge=1, train_days=300, validation_days=50,
                   refit_every=20, test_start="2010-02-01")
    with pytest.raises(LstmkitError, match="no test days"):
        plan_folds(dates, first=30, horizon=1, purge=1, train_days=1000, validation_days=50,
                   refit_every=20, test_start=None)


# --- end to end -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prices():
    return read_prices(price_frame(days=420))


def test_an_altered_future_changes_no_earlier_forecast(prices):
    """Prices after day D changed: every forecast (and baseline) made before D is the same."""
    frame = price_frame(days=420)
    cut = pd.Timestamp(prices.dates[380])
    later = pd.to_datetime(frame.date) >= cut
    factor = np.where(later, 1.5, 1.0)
    altered = read_prices(frame.assign(**{c: frame[c] * factor
                                          for c in ("open", "high", "low", "close")},
                                       volume=frame.volume * np.where(later, 3, 1)))
    config = small_config(target="volatility")
    first = FinanceModel(config)
    first.backtest(prices)
    second = FinanceModel(small_config(target="volatility"))
    second.backtest(altered)
    earlier = first.forecasts.date < cut
    assert earlier.sum() > 100 and (~earlier).sum() > 0
    for column in ("forecast", "historical_mean", "ewma", "garch"):
        np.testing.assert_array_equal(first.forecasts[column][earlier],
                                      second.forecasts[column][earlier], err_msg=column)
    assert not np.allclose(first.forecasts.forecast[~earlier],
                           second.forecasts.forecast[~earlier])


def test_killed_backtest_resumes_to_the_same_forecasts(prices, tmp_path, monkeypatch):
    whole = FinanceModel(small_config(target="return"))
    whole.backtest(prices, tmp_path / "whole", report=False)
    save = FinanceModel._save_progress
    calls = {"count": 0}

    def save_then_stop(self, *arguments):
        save(self, *arguments)
        calls["count"] += 1
        if calls["count"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(FinanceModel, "_save_progress", save_then_stop)
    with pytest.raises(RunInterrupted):
        FinanceModel(small_config(target="return")).backtest(prices, tmp_path / "run",
                                                             report=False)
    monkeypatch.setattr(FinanceModel, "_save_progress", save)
    resumed = FinanceModel(small_config(target="return"))
    resumed.backtest(prices, tmp_path / "run", resume=True, report=False)
    pd.testing.assert_frame_equal(resumed.forecasts, whole.forecasts)
    loaded = FinanceModel.load(tmp_path / "run")
    for name, tensor in whole.net.state_dict().items():
        assert torch.equal(tensor, loaded.net.state_dict()[name]), name
    assert loaded.scores.rows == whole.scores.rows


def test_return_backtest_scores_the_model_beside_the_baselines(prices):
    model = FinanceModel(small_config(target="return", cost_bps=10))
    scores = model.backtest(prices)
    assert set(scores.rows) == {"model", "random_walk", "historical_mean"}
    assert scores.rows["random_walk"]["rmse"] == pytest.approx(
        np.sqrt(np.mean(model.forecasts.realised**2)))
    assert "dm" in scores.rows["random_walk"] and "p_dm" in scores.rows["historical_mean"]
    trading = scores.details["trading"]["rows"]
    assert trading["strategy"]["annual_return"] <= trading["strategy_gross"]["annual_return"]
    assert scores.notes[0].startswith("Walk-forward over ")
    assert "random walk" in scores.notes[0] and "buy and hold" in scores.notes[0]


def test_garch_baseline_uses_parameters_fitted_before_the_test(prices):
    returns = prices.log_returns()[:, 0]
    variance, params = garch_variance(returns, np.arange(30, 300), np.arange(310, 330), 1)
    assert variance.shape == (20,) and (variance > 0).all()
    omega, alpha, beta = params[1:4] / np.array([100.0**2, 1, 1])
    # the one-step forecast made at origin 310 follows the recursion from 309's
    later, _ = garch_variance(returns, np.arange(30, 300), np.arange(309, 330), 1)
    step = omega + alpha * (returns[310] - params[0] / 100) ** 2 + beta * later[0]
    assert variance[0] == pytest.approx(step, rel=1e-6)


def test_long_short_positions_and_their_asset_count():
    signal = np.array([[0.3, -0.1, 0.2, 0.0], [-1.0, 2.0, 0.5, 0.1]])
    weights = positions(signal, "long_short", 1)
    np.testing.assert_allclose(weights, [[0.5, -0.5, 0, 0], [-0.5, 0.5, 0, 0]])
    np.testing.assert_allclose(positions(signal[:, :2], "sign", 1), [[0.5, -0.5], [-0.5, 0.5]])
    with pytest.raises(LstmkitError, match="needs at least 6 assets"):
        positions(signal, "long_short", 3)


def test_train_predict_and_report_commands(tmp_path, capsys):
    price_frame(days=420).to_csv(tmp_path / "prices.csv", index=False)
    common = ["--data", str(tmp_path / "prices.csv"), "--window", "10", "--hidden-size", "4",
              "--validation-days", "40", "--train-days", "200", "--refit-every", "60",
              "--epochs", "2", "--quiet"]
    assert main(["finance", "backtest", *common, "--target", "direction", "--strategy",
                 "long_short", "--run-dir", str(tmp_path / "bt")]) == 0
    out = capsys.readouterr().out
    assert "coin (p = 0.5)" in out and "buy and hold" in out
    for name in ("report.html", "forecasts.csv", "metrics.json", "equity.png", "gates.png"):
        assert (tmp_path / "bt" / name).is_file(), name
    assert main(["finance", "report", "--run-dir", str(tmp_path / "bt"), "--output-dir",
                 str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.html").is_file()
    assert main(["finance", "train", *common, "--target", "volatility", "--run-dir",
                 str(tmp_path / "vol")]) == 0
    capsys.readouterr()
    assert main(["finance", "predict", "--run-dir", str(tmp_path / "vol"), "--data",
                 str(tmp_path / "prices.csv"), "--output", str(tmp_path / "next.csv")]) == 0
    forecast = pd.read_csv(tmp_path / "next.csv")
    assert list(forecast.asset) == ["A0", "A1"] and (forecast.forecast > 0).all()
    assert (forecast.annualised_volatility < 2).all()
