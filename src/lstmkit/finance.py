"""``lstmkit.finance``: forecasting returns, direction and volatility from prices, with
walk-forward evaluation beside the random walk, GARCH(1,1) and buy and hold.

    from lstmkit.finance import FinanceConfig, FinanceModel

See :mod:`lstmkit.tasks.finance` for the whole story and :mod:`lstmkit.data.prices` for
the price tables it reads.
"""

from lstmkit.data.prices import PricePanel, read_prices
from lstmkit.tasks.finance import FinanceConfig, FinanceModel, FinanceNet
from lstmkit.tasks.lifecycle import Evaluation
from lstmkit.train import TrainConfig

__all__ = ["Evaluation", "FinanceConfig", "FinanceModel", "FinanceNet", "PricePanel",
           "TrainConfig", "read_prices"]
