"""The course's sample apps: every module in this package is written by a notebook.

Notebooks in ``notebooks/`` export their code here with ``%%writefile`` so that what a
learner reads is exactly what runs in production; ``tests/test_notebook_exports.py``
fails when the two drift apart. Edit the notebook, not the file.
"""
