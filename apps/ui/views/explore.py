"""Explore: the training data by species and island, to see what the models learned from."""

import altair as alt
import streamlit as st

from apps.data import COLUMNS
from apps.ui.common import penguins

st.title("Explore")
st.caption("The Palmer penguins: 344 birds of three species on three islands.")

data = penguins()
measurements = [c.name for c in COLUMNS.values() if c.type == "number"]

left, right = st.columns(2)
species = left.multiselect("Species", COLUMNS["species"].categories, default=None)
islands = right.multiselect("Islands", COLUMNS["island"].categories, default=None)
shown = data[
    data["species"].isin(species or COLUMNS["species"].categories)
    & data["island"].isin(islands or COLUMNS["island"].categories)
]
st.caption(f"{len(shown)} of {len(data)} penguins (leave a filter empty to keep all).")

st.subheader("Who lives where")
st.altair_chart(
    alt.Chart(shown)
    .mark_bar()
    .encode(
        x=alt.X("count():Q", title="penguins"),
        y=alt.Y("island:N", title=None),
        color="species:N",
        tooltip=["island", "species", "count()"],
    ),
    width="stretch",
)

st.subheader("Two measurements")
x_axis, y_axis = st.columns(2)
x = x_axis.selectbox("Horizontal", measurements, index=0)
y = y_axis.selectbox("Vertical", measurements, index=1)
st.altair_chart(
    alt.Chart(shown.dropna(subset=[x, y]))
    .mark_circle(size=40, opacity=0.7)
    .encode(
        x=alt.X(f"{x}:Q", scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", scale=alt.Scale(zero=False)),
        color="species:N",
        tooltip=["species", "island", x, y],
    ),
    width="stretch",
)

st.subheader("One measurement by species")
measure = st.selectbox("Measurement", measurements, index=2)
st.altair_chart(
    alt.Chart(shown.dropna(subset=[measure]))
    .mark_boxplot()
    .encode(x=alt.X(f"{measure}:Q", scale=alt.Scale(zero=False)), y="species:N", color="species:N"),
    width="stretch",
)

st.subheader("Medians")
st.dataframe(shown.groupby(["species", "island"])[measurements].median().round(1))
