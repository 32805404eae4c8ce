"""The paper's experiment: presets of training and evaluation runs, the cached runner, statistics, claims."""
