"""The course's web UI: a multipage Streamlit app built from the models' manifests.

Run it with ``python -m streamlit run apps/ui/app.py`` (models loaded in-process) or,
with the API too, ``python -m apps.stack``. The pages never know where the models live:
:mod:`apps.ui.source` hides whether they come from the API or from the local registry.
"""
