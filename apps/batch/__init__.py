"""Batch scoring: a model's predictions for large CSV and Parquet files, exactly once.

``python -m apps.batch score INPUT... --model NAME --output DIR`` reads its inputs as a
stream of chunks (constant memory, whatever the size), checks every row with the
model's :class:`~apps.registry.InputSchema` (the API's rules), scores the good rows,
writes the bad ones to a rejects file with their reasons, and commits each chunk's
output once, so that a job killed at any moment resumes where it stopped. The same
chunks run in this process or on a Dask cluster, with identical output.
"""
