"""Long-range dependency experiments: LSTM against GRU and plain RNN at equal parameter budget.

Three tasks from lstmkit.data.long_range (adding problem, copying memory,
sequential digits); one model shape for all: a recurrent encoder and the output
head y = W h + b, read at the last step (adding, digits) or at every step (copy).
The LSTM's hidden size sets the parameter budget; the GRU, the plain RNN and the
LSTM variants get the largest hidden size whose parameter count fits in it.

``run_experiment(config)`` trains one model and measures it on a fixed test set
every ``eval_every`` steps; ``hidden_state_gradient_norms`` measures
||dLoss/dh_t|| (and ||dLoss/dc_t|| for the LSTM) for the mechanism picture.

One module per concept: ``config`` (ExperimentConfig), ``models`` (the models at equal
budget), ``specs`` (each task's batches, loss, metrics and baseline), ``training``
(the step loop with its checkpoints, ExperimentResult), ``experiment`` (the Experiment
task), ``gradients`` (how far back the gradient reaches). The choices the command line
offers are in :mod:`lstmkit.tasks.long_range_choices`, which imports no torch.
"""

from lstmkit.tasks.long_range.config import ExperimentConfig
from lstmkit.tasks.long_range.experiment import Experiment
from lstmkit.tasks.long_range.gradients import hidden_state_gradient_norms
from lstmkit.tasks.long_range.training import ExperimentResult, run_experiment

__all__ = ["Experiment", "ExperimentConfig", "ExperimentResult", "hidden_state_gradient_norms",
           "run_experiment"]
