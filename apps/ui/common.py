"""What every page shares: the data, the model picker, and plain error messages."""

import pandas as pd
import streamlit as st

from apps.data import load_data
from apps.ui.source import SourceError, open_source


@st.cache_data(show_spinner=False)
def penguins() -> pd.DataFrame:
    """The penguins data, read once per process.

    ``st.cache_data`` returns a fresh copy to every caller, so a page that changes its
    frame cannot change what the next page sees (``st.cache_resource`` would share it).
    """
    return load_data()


def show_problem(error: SourceError) -> None:
    """Say what went wrong in plain words, offer a retry if it may help, and stop the page.

    The retry button needs no code: any click makes Streamlit run the script again,
    which asks the source again.
    """
    st.error(error.message, icon=":material/error:")
    if error.retry:
        st.button("Retry", type="primary", icon=":material/refresh:")
    st.stop()


def choose_model(source) -> dict:
    """A model and a version picked from what the source offers; their metadata.

    Nothing is hard-coded: the names and versions come from the source, so a new model
    in the registry appears here without a change to the UI. Classifiers come first, so
    that a page opens on a model that can say how sure it is.
    """
    listed = sorted(source.models(), key=lambda e: (e["task"] != "classification", e["name"]))
    models = {entry["name"]: entry for entry in listed}
    if not models:
        raise SourceError("There are no models yet: `python3 course.py train` trains them.")
    left, right = st.columns([3, 1])
    with left:
        name = remembered_selectbox("Model", list(models), key="model")
    entry = models[name]
    production = entry.get("production", entry["latest"])  # an API older than notebook 08
    with right:
        version = remembered_selectbox(
            "Version",
            sorted(entry["versions"], reverse=True),
            key=f"version-of-{name}",
            default=production,
            format_func=lambda v: f"{v} (production)" if v == production else str(v),
        )
    return source.model(name, version)


def remembered_selectbox(label: str, options: list, key: str, default=None, **kwargs):
    """A select box whose choice follows the user from page to page.

    Streamlit forgets a widget's value when a run does not draw it, which is what
    happens on another page. So the choice is also copied, when it changes, to a key
    that no widget owns (``chosen-<key>``), and every page's select box starts from it,
    or from ``default`` (else the first option) until the user chooses.
    """

    def remember() -> None:
        st.session_state[f"chosen-{key}"] = st.session_state[key]

    chosen = st.session_state.get(f"chosen-{key}", default)
    index = options.index(chosen) if chosen in options else 0
    return st.selectbox(label, options, index=index, key=key, on_change=remember, **kwargs)


def schema_table(columns: list[dict]) -> pd.DataFrame:
    """The input schema as a table a person can read."""
    rows = []
    for column in columns:
        if column["type"] == "category":
            allowed = ", ".join(column["categories"])
        else:
            unit = f" {column['unit']}" if column.get("unit") else ""
            allowed = f"{column['minimum']:g} to {column['maximum']:g}{unit}"
        rows.append(
            {
                "column": column["name"],
                "description": column.get("description", ""),
                "allowed values": allowed,
                "may be empty": "yes" if column["nullable"] else "no",
            }
        )
    return pd.DataFrame(rows)


def source_and_model():
    """The model source and the model the user picked; on failure, a plain message and a stop.

    Every page that works with one model starts with this, so they all fail the same way.
    """
    source = open_source()
    try:
        return source, choose_model(source)
    except SourceError as error:
        show_problem(error)
