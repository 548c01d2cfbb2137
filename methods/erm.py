"""ERM: empirical risk minimisation on the training data, no augmentation."""
from bench.api import Method


class ERM(Method):
    name = "erm"
    description = "Empirical risk minimisation: the task's model and loss, no augmentation."
    params = {}
    kind = "baseline"
    # Everything is the harness default (bench.api.Method): plain loss, plain predictor.
