"""Training: the state a run carries, the loop, validation, checkpoint writing, EMA, optimizer, schedule,
precision, metrics and the distributed helpers. Checkpoint files are :mod:`rs3d.checkpoint`'s; the test
of a trained model is :mod:`rs3d.evaluation`'s."""
