"""The UI's entry point: ``python -m streamlit run apps/ui/app.py``.

With ``st.navigation`` this script is the frame around every page. Streamlit runs it
from the top at every interaction; it sets up the page, says where the models come
from, and runs the page the user is on. Each page is its own script in ``views/``.
"""

import streamlit as st

from apps.ui.source import open_source

st.set_page_config(page_title="Penguin models", page_icon=":material/pets:", layout="wide")

page = st.navigation(
    [
        st.Page("views/predict.py", title="Predict", icon=":material/pets:", default=True),
        st.Page("views/batch.py", title="Batch", icon=":material/table_view:"),
        st.Page("views/model.py", title="Model", icon=":material/info:"),
        st.Page("views/explore.py", title="Explore", icon=":material/bar_chart:"),
        st.Page("views/monitoring.py", title="Monitoring", icon=":material/monitoring:"),
    ]
)
st.sidebar.caption(f"Models from {open_source().label}.")
page.run()
