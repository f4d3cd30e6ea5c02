"""Retraining and rollout: when to retrain, whether the new model is better, and how to
put it in production (and take it out again) without a failed request.

* :mod:`~apps.rollout.trigger`: the rule that says a model needs retraining;
* :mod:`~apps.rollout.fresh_data`: the labelled production rows, split once and for all;
* :mod:`~apps.rollout.gate`: champion and candidate judged on the same held-out rows;
* :mod:`~apps.rollout.retrain`: a candidate trained, gated, and registered with its lineage;
* :mod:`~apps.rollout.promotion`: promote and roll back, through the registry's aliases;
* ``python -m apps.rollout``: all of it from the command line, for people and schedulers.
"""
