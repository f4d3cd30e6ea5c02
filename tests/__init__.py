"""The course test suite: code, data, models, notebooks and the real running apps."""
