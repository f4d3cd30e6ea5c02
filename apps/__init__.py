"""The course's sample apps: every module in this package is written by a notebook.

Notebooks in ``notebooks/`` export their code here with ``%%writefile`` so that what a
learner reads is exactly what runs in production; ``tests/test_notebook_exports.py``
fails when the two drift apart. Edit the notebook and re-run it, or edit the file and
copy it back into its cells with ``python tools/notebooks.py sync <file>``.
"""

__version__ = "0.2.0"
"""The course's version: the package's, the API's OpenAPI document's and its V2 metadata's."""
