"""Monitoring: log every prediction, attach the truth later, and watch for drift.

* :mod:`~apps.monitoring.db`: the database (SQLite by default, PostgreSQL by URL);
* :mod:`~apps.monitoring.prediction_log`: the API's log, written off the request path;
* :mod:`~apps.monitoring.store`: feedback, batch runs and the queries reports need;
* :mod:`~apps.monitoring.drift`: the statistical tests, with SciPy;
* :mod:`~apps.monitoring.performance`: live accuracy or error, with confidence intervals;
* :mod:`~apps.monitoring.report`: ``python -m apps.monitoring report``, HTML and JSON;
* :mod:`~apps.monitoring.simulator`: weeks of traffic, with drift, through the real API.
"""
