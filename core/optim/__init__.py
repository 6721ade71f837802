"""shardgrad.optim: torch's optimizers (SGD, Adam, AdamW, NAdam, RAdam, Adamax, RMSprop,
Adagrad, Adadelta, Rprop, ASGD, LBFGS, Adafactor, Muon) and the `lr_scheduler` module. Updates are vectorised over whole arrays and
run in place."""

from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam, RAdam
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = [
    "ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "Adamax", "AdamW", "LBFGS", "NAdam", "Optimizer",
    "Muon", "RAdam",
    "RMSprop", "Rprop", "SGD", "lr_scheduler", "required", "swa_utils",
]  # fmt: skip
