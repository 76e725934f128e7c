"""Runtime: the training loop, evaluation, sampling and metrics; knows nothing of YAML."""
