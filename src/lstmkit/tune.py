"""``lstmkit.tune``: hyperparameter search with Optuna over any task's options.

    from lstmkit.forecast import ForecastConfig
    from lstmkit.tune import Param, Tuner

    tuner = Tuner("forecast", ForecastConfig(target="Passengers", horizon=24), "airline.csv",
                  space={"hidden_size": Param("hidden_size", 8, 64, whole=True)})
    result = tuner.run("studies/air", trials=20)     # SQLite in studies/air; resumable
    result.best_options, result.best_run             # studies/air/best: a normal run

Several processes or machines join one study through ``storage=`` (a PostgreSQL URL, or
``journal:PATH`` on a shared filesystem). See :mod:`lstmkit.tuning`.
"""

from lstmkit.tuning import Param, Tuner, TuningResult, parse_param, read_space_file

__all__ = ["Param", "Tuner", "TuningResult", "parse_param", "read_space_file"]
