"""Financial forecasting done honestly: returns, direction and volatility of price series,
judged by walk-forward evaluation beside the random walk, GARCH(1,1) and buy and hold.

    from lstmkit.finance import FinanceConfig, FinanceModel

    model = FinanceModel(FinanceConfig(target="volatility"))
    scores = model.backtest("arch:sp500", run_dir="runs/spx-vol")   # walk forward
    print(scores.notes[0])             # did it beat GARCH(1,1)? with the test's p-value
    FinanceModel.load("runs/spx-vol").predict("arch:sp500")          # the next day

Why each piece is there: prices echo their last value, so a model of price levels looks
good and means nothing; the targets are returns, their direction or their variance. A
scaler fitted on the whole series leaks the future; here every scaler, target scale,
baseline parameter and network is fitted on a training window that ends ``purge`` days
before the days it is tested on, refitted every ``refit_every`` days. A forecast is only
worth something beside the random walk and GARCH(1,1), with a test that says whether the
difference is more than luck, and a strategy is only worth something after costs and
beside buy and hold.

One module per concept: ``config`` (FinanceConfig), ``network`` (FinanceNet and its loss
per target), ``walk_forward`` (the fold plan, the training window's scaler, the input
windows), ``baselines`` (random walk, historical mean, GARCH(1,1), EWMA), ``metrics``
(the measures, by formula), ``scoring`` (forecasts and trades scored), ``model`` (the
task: fit, backtest, predict, save, load). Prices are read by :mod:`lstmkit.data.prices`
and turned into features and targets by :mod:`lstmkit.data.market_features`.
"""

from lstmkit.tasks.finance.config import FinanceConfig
from lstmkit.tasks.finance.model import FinanceModel
from lstmkit.tasks.finance.network import FinanceNet

__all__ = ["FinanceConfig", "FinanceModel", "FinanceNet"]
