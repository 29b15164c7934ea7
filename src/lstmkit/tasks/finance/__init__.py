"""Financial forecasting: returns, direction and volatility of price series, scored by
walk-forward evaluation beside the random walk, GARCH(1,1) and buy-and-hold."""
