"""shardgrad.optim (to be filled: SGD, Adam, AdamW, RMSprop, Adagrad, lr_scheduler)."""
