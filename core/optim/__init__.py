"""shardgrad.optim: torch's optimizers (SGD, Adam, AdamW, NAdam, RAdam, Adamax, RMSprop,
Adagrad, Adadelta) and the `lr_scheduler` module. Updates are vectorised over whole arrays and
run in place."""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .nadam import NAdam, RAdam
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "NAdam", "Optimizer", "RAdam", "RMSprop",
    "SGD", "lr_scheduler", "required",
]  # fmt: skip
