"""Training and evaluation engine: schedule, optimizer, EMA, checkpoints, the training loop."""
