"""shardgrad.optim: torch's optimizers (SGD, Adam, AdamW, NAdam, RAdam, Adamax, RMSprop,
Adagrad, Adadelta, Rprop, ASGD, LBFGS) and the `lr_scheduler` module. Updates are vectorised over whole arrays and
run in place."""

from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .nadam import NAdam, RAdam
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = [
    "ASGD", "Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "LBFGS", "NAdam", "Optimizer",
    "RAdam",
    "RMSprop", "Rprop", "SGD", "lr_scheduler", "required", "swa_utils",
]  # fmt: skip
