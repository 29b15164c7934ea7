"""Finance metrics against values worked out by hand from their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lstmkit.errors import LstmkitError
from lstmkit.tasks.finance.metrics import (
    buy_and_hold_returns,
    diebold_mariano,
    directional_accuracy,
    equal_accuracy_test,
    error_scores,
    performance,
    qlike,
    strategy_returns,
    variance_mse,
)


def binomial_upper_tail(hits: int, calls: int) -> float:
    return sum(math.comb(calls, k) for k in range(hits, calls + 1)) / 2**calls


# ---------------------------------------------------------------- directional accuracy


def test_directional_accuracy_skips_zero_forecasts_and_zero_outcomes() -> None:
    forecast = np.array([0.5, -0.2, 0.0, 0.3, -0.1, 0.4])
    realised = np.array([1.0, -0.5, 0.7, -0.2, 0.0, 0.3])
    # Calls at 0, 1, 3, 5 (index 2: no forecast, index 4: no outcome); index 3 misses.
    result = directional_accuracy(forecast, realised)
    assert result["calls"] == 4.0
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["p_value"] == pytest.approx((4 + 1) / 16)
    assert result["p_value"] == pytest.approx(binomial_upper_tail(3, 4))


def test_directional_accuracy_p_value_is_the_binomial_upper_tail() -> None:
    realised = np.array([1.0, -1.0] * 5)
    forecast = realised.copy()
    forecast[[2, 7]] *= -1.0  # two misses out of ten
    result = directional_accuracy(forecast, realised)
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["p_value"] == pytest.approx((45 + 10 + 1) / 1024)
    assert result["p_value"] == pytest.approx(binomial_upper_tail(8, 10))


def test_directional_accuracy_with_no_calls() -> None:
    result = directional_accuracy(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert math.isnan(result["accuracy"])
    assert result["calls"] == 0.0
    assert math.isnan(result["p_value"])


# ---------------------------------------------------------------- error scores


def test_error_scores() -> None:
    scores = error_scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 5.0]))
    # errors -1, 0, -2
    assert scores["mae"] == pytest.approx(1.0)
    assert scores["rmse"] == pytest.approx(math.sqrt(5.0 / 3.0))


# ---------------------------------------------------------------- Diebold-Mariano

DM_ERRORS_A = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
DM_ERRORS_B = np.array([2.0, 1.0, -1.0, 1.0, 0.5])


def test_diebold_mariano_by_hand_horizon_1_and_2() -> None:
    # d = e_a^2 - e_b^2 = [1-4, 4-1, 0.25-1, 9-1, 1-0.25] = [-3, 3, -0.75, 8, 0.75]
    n = 5
    mean = (-3 + 3 - 0.75 + 8 + 0.75) / n
    assert mean == pytest.approx(1.6)
    centred = [-4.6, 1.4, -2.35, 6.4, -0.85]
    gamma_0 = sum(c * c for c in centred) / n
    assert gamma_0 == pytest.approx(70.325 / 5)
    gamma_1 = (1.4 * -4.6 + -2.35 * 1.4 + 6.4 * -2.35 + -0.85 * 6.4) / n
    assert gamma_1 == pytest.approx(-30.21 / 5)

    # horizon 1: lrv = gamma_0, HLN factor sqrt((n + 1 - 2) / n)
    expected_1 = mean / math.sqrt(gamma_0 / n) * math.sqrt((n + 1 - 2) / n)
    statistic, p_value = diebold_mariano(DM_ERRORS_A, DM_ERRORS_B, horizon=1)
    assert statistic == pytest.approx(expected_1)
    assert p_value == pytest.approx(2 * stats.t.sf(abs(expected_1), df=n - 1))

    # horizon 2: lrv = gamma_0 + 2 gamma_1 = 1.981, HLN factor sqrt((n + 1 - 4 + 2/n) / n)
    lrv_2 = gamma_0 + 2 * gamma_1
    assert lrv_2 == pytest.approx(1.981)
    expected_2 = mean / math.sqrt(lrv_2 / n) * math.sqrt((n + 1 - 4 + 2 / n) / n)
    statistic, p_value = diebold_mariano(DM_ERRORS_A, DM_ERRORS_B, horizon=2)
    assert statistic == pytest.approx(expected_2)
    assert p_value == pytest.approx(2 * stats.t.sf(abs(expected_2), df=n - 1))


def test_diebold_mariano_sign_and_absolute_loss() -> None:
    # power 1: d = |e_a| - |e_b| = [-1, 1, -0.5, 2, 0.5]
    n = 5
    d = np.array([-1.0, 1.0, -0.5, 2.0, 0.5])
    mean = 2.0 / n
    gamma_0 = float(np.sum((d - mean) ** 2)) / n
    expected = mean / math.sqrt(gamma_0 / n) * math.sqrt((n - 1) / n)
    statistic, _ = diebold_mariano(DM_ERRORS_A, DM_ERRORS_B, power=1)
    assert statistic == pytest.approx(expected)
    swapped, _ = diebold_mariano(DM_ERRORS_B, DM_ERRORS_A, power=1)
    assert swapped == pytest.approx(-expected)


def test_diebold_mariano_degenerate_cases() -> None:
    errors = np.array([0.3, -1.0, 2.0, 0.1])
    assert diebold_mariano(errors, errors) == (0.0, 1.0)
    assert diebold_mariano(errors, -errors, horizon=3) == (0.0, 1.0)
    # a constant nonzero differential: a is worse every time, a certain difference
    assert diebold_mariano(np.full(4, 2.0), np.full(4, 1.0)) == (math.inf, 0.0)
    assert equal_accuracy_test(np.full(4, -9.0), np.full(4, -8.5)) == (-math.inf, 0.0)


def test_diebold_mariano_negative_long_run_variance_falls_back_to_gamma_0() -> None:
    # power 1: d = [2, 0, 2, 0, 2, 0], mean 1, centred +-1: gamma_0 = 1, gamma_1 = -5/6,
    # lrv at horizon 2 = 1 - 10/6 < 0, so the statistic uses gamma_0 = 1 alone.
    errors_a = np.array([3.0, 1.0, 3.0, 1.0, 3.0, 1.0])
    errors_b = np.ones(6)
    n, h = 6, 2
    expected = 1.0 / math.sqrt(1.0 / n) * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    statistic, p_value = diebold_mariano(errors_a, errors_b, horizon=h, power=1)
    assert statistic == pytest.approx(expected)
    assert p_value == pytest.approx(2 * stats.t.sf(expected, df=n - 1))


# ---------------------------------------------------------------- variance forecasts


def test_qlike_and_variance_mse() -> None:
    forecast = np.array([1.0, 2.0, 4.0])
    realised = np.array([0.0, 2.0, 1.0])
    # terms: log 1 + 0/1 = 0, log 2 + 2/2, log 4 + 1/4
    expected = (0.0 + (math.log(2) + 1.0) + (math.log(4) + 0.25)) / 3
    assert qlike(forecast, realised) == pytest.approx(expected)
    assert qlike(forecast, realised) == pytest.approx(math.log(2) + 1.25 / 3)
    # squared differences 1, 0, 9
    assert variance_mse(forecast, realised) == pytest.approx(10.0 / 3.0)


def test_qlike_is_smallest_at_the_true_variance() -> None:
    realised = np.array([2.0])
    at_truth = qlike(np.array([2.0]), realised)
    assert at_truth == pytest.approx(math.log(2.0) + 1.0)
    assert qlike(np.array([1.5]), realised) > at_truth
    assert qlike(np.array([3.0]), realised) > at_truth


# ---------------------------------------------------------------- strategy returns


def test_strategy_returns_two_assets_with_costs() -> None:
    weights = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, -0.5]])
    asset_returns = np.array([[0.01, 0.02], [-0.02, 0.03], [0.04, -0.01]])
    net, turnover = strategy_returns(weights, asset_returns, cost_bps=10.0)
    # turnover: entering 0.5 + 0.5; then |1 - 0.5| + |0 - 0.5|; then |0.25 - 1| + |-0.5 - 0|
    np.testing.assert_allclose(turnover, [1.0, 1.0, 1.25])
    # gross: 0.005 + 0.010, -0.020 + 0, 0.010 + 0.005; cost 0.001 per unit of turnover
    np.testing.assert_allclose(net, [0.015 - 0.001, -0.020 - 0.001, 0.015 - 0.00125])
    assert net.shape == (3,) and turnover.shape == (3,)


def test_strategy_returns_one_asset_and_no_cost() -> None:
    weights = np.array([1.0, 1.0, 0.0])
    asset_returns = np.array([0.01, 0.02, 0.03])
    net, turnover = strategy_returns(weights, asset_returns, cost_bps=5.0)
    np.testing.assert_allclose(turnover, [1.0, 0.0, 1.0])
    np.testing.assert_allclose(net, [0.01 - 0.0005, 0.02, -0.0005])
    free, _ = strategy_returns(weights, asset_returns, cost_bps=0.0)
    np.testing.assert_allclose(free, [0.01, 0.02, 0.0])


def test_buy_and_hold_returns() -> None:
    asset_returns = np.array([[0.10, -0.10], [0.10, 0.20], [-0.50, 0.0]])
    # value: mean(1.1, 0.9) = 1.0; mean(1.21, 1.08) = 1.145; mean(0.605, 1.08) = 0.8425
    expected = [1.0 - 1.0, 1.145 / 1.0 - 1.0, 0.8425 / 1.145 - 1.0]
    np.testing.assert_allclose(buy_and_hold_returns(asset_returns), expected)
    single = np.array([0.01, -0.02, 0.03])
    np.testing.assert_allclose(buy_and_hold_returns(single), single)


# ---------------------------------------------------------------- performance


def test_performance_four_day_path() -> None:
    returns = np.array([0.10, -0.20, 0.05, 0.10])
    # equity 1.1, 0.88, 0.924, 1.0164; peak 1.1 to trough 0.88 is a 20% fall
    result = performance(returns)
    assert result["total_return"] == pytest.approx(0.0164)
    assert result["annual_return"] == pytest.approx(1.0164 ** (252 / 4) - 1.0)
    assert result["max_drawdown"] == pytest.approx(0.2)
    # mean 0.0125, deviations 0.0875, -0.2125, 0.0375, 0.0875: sum of squares 0.061875
    deviation = math.sqrt(0.061875 / 3)
    assert result["annual_volatility"] == pytest.approx(deviation * math.sqrt(252))
    assert result["sharpe"] == pytest.approx(0.0125 / deviation * math.sqrt(252))


def test_performance_counts_a_first_period_loss_and_uses_periods_per_year() -> None:
    result = performance(np.array([-0.10, 0.05]), periods_per_year=12)
    # equity 1 -> 0.9 -> 0.945
    assert result["max_drawdown"] == pytest.approx(0.1)
    assert result["annual_return"] == pytest.approx(0.945**6 - 1.0)


def test_performance_constant_returns_have_no_sharpe() -> None:
    result = performance(np.array([0.01, 0.01, 0.01]))
    assert math.isnan(result["sharpe"])
    assert result["annual_volatility"] == 0.0
    assert result["max_drawdown"] == 0.0


# ---------------------------------------------------------------- unusable input


@pytest.mark.parametrize(
    "call",
    [
        lambda: directional_accuracy(np.ones(3), np.ones(4)),
        lambda: directional_accuracy(np.array([1.0, np.nan]), np.ones(2)),
        lambda: error_scores(np.array([]), np.array([])),
        lambda: error_scores(np.ones((2, 2)), np.ones((2, 2))),
        lambda: diebold_mariano(np.ones(3), np.ones(2)),
        lambda: diebold_mariano(np.ones(1), np.ones(1)),
        lambda: diebold_mariano(np.ones(3), np.zeros(3), horizon=0),
        lambda: diebold_mariano(np.ones(3), np.zeros(3), horizon=3),
        lambda: diebold_mariano(np.ones(3), np.zeros(3), power=0),
        lambda: qlike(np.array([1.0, 0.0]), np.ones(2)),
        lambda: qlike(np.array([1.0, -1.0]), np.ones(2)),
        lambda: qlike(np.ones(2), np.array([1.0, -0.5])),
        lambda: qlike(np.ones(2), np.ones(3)),
        lambda: variance_mse(np.ones(2), np.ones(3)),
        lambda: strategy_returns(np.ones((2, 2)), np.ones((2, 2)), cost_bps=-1.0),
        lambda: strategy_returns(np.ones((2, 2)), np.ones((3, 2)), cost_bps=0.0),
        lambda: strategy_returns(np.ones((2, 2, 2)), np.ones((2, 2, 2)), cost_bps=0.0),
        lambda: buy_and_hold_returns(np.array([0.1, -1.5])),
        lambda: performance(np.array([0.01])),
        lambda: performance(np.array([0.01, 0.02]), periods_per_year=0),
    ],
)
def test_unusable_input_raises(call) -> None:
    with pytest.raises(LstmkitError):
        call()
