"""shardgrad.optim: torch's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and the
`lr_scheduler` module. Updates are vectorised over whole arrays and run in place."""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler", "required"]
