"""The UI's entry point: ``python -m streamlit run apps/ui/app.py``.

With ``st.navigation`` this script is the frame around every page. Streamlit runs it
from the top at every interaction; it sets up the page, says where the models come
from, and runs the page the user is on. Each page is its own script in ``views/``.
"""

from pathlib import Path

import streamlit as st

from apps.ui.source import open_source

BUILT_IN = {"predict.py", "batch.py", "model.py", "explore.py"}


def later_pages() -> list:
    """Pages that later lessons write into ``views/`` (Monitoring, in notebook 07) join the
    menu by themselves, titled after their file, as the API's extensions do."""
    views = Path(__file__).parent / "views"
    names = sorted(p.name for p in views.glob("*.py") if p.name not in BUILT_IN)
    return [
        st.Page(f"views/{name}", title=name[:-3].replace("_", " ").capitalize()) for name in names
    ]


# The tab's icon is an emoji: Streamlit fetches a :material/...: page icon from a font
# CDN, which fails offline (the icons inside the page come with Streamlit itself).
st.set_page_config(page_title="Penguin models", page_icon="🐧", layout="wide")

page = st.navigation(
    [
        st.Page("views/predict.py", title="Predict", icon=":material/pets:", default=True),
        st.Page("views/batch.py", title="Batch", icon=":material/table_view:"),
        st.Page("views/model.py", title="Model", icon=":material/info:"),
        st.Page("views/explore.py", title="Explore", icon=":material/bar_chart:"),
        *later_pages(),
    ]
)
st.sidebar.caption(f"Models from {open_source().label}.")
page.run()
