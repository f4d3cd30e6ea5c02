"""Monitoring: is the model still right? Drift and live performance, and the latest answers.

The figures come from the latest drift report (``python -m apps.monitoring report``, run
on a schedule) and the prediction log, through the API or from the local database.
"""

import altair as alt
import pandas as pd
import streamlit as st

from apps.ui.common import show_problem, source_and_model
from apps.ui.source import SourceError

st.title("Monitoring")
st.caption("What the prediction log knows about the model, and what the latest report found.")

source, model = source_and_model()
try:
    overview = source.monitoring(model["name"])
except SourceError as error:
    show_problem(error)

logged, labelled, latest = st.columns(3)
logged.metric("Predictions logged", f"{overview['predictions']:,}")
labelled.metric("With their truth", f"{overview['labelled']:,}")
latest.metric("Latest prediction", (overview["last"] or "none yet")[:16].replace("T", " "))

report = overview["report"]
if report is None:
    st.info(
        "No drift report yet. Make one (and schedule it) with "
        f"`python -m apps.monitoring report --model {model['name']}`.",
        icon=":material/info:",
    )
else:
    windows = report["windows"]
    if report["latest_window"] is None:
        st.warning("The latest report had no window with enough rows to test.")
    elif report["drift"]:
        drifted = ", ".join(windows[report["latest_window"]]["drifted"])
        st.error(f"Drift in the latest window: {drifted}.", icon=":material/warning:")
    else:
        st.success("No drift in the latest window.", icon=":material/check_circle:")
    st.caption(
        f"Report on version {report['version']}, from {report['since'][:10]} to "
        f"{report['until'][:10]}, made {(report.get('created_at') or '?')[:16]}."
    )

    st.subheader("Drift per column over time")
    shifts = pd.DataFrame(
        [
            {
                "window": w["start"][:10],
                "column": t["column"],
                "PSI": t["effect"],
                "drift": any(u["drift"] for u in w["tests"] if u["column"] == t["column"]),
            }
            for w in windows
            for t in w["tests"]
            if t["test"] != "missing"
        ]
    )
    if shifts.empty:
        st.caption("No window had enough rows to test.")
    else:
        lines = alt.Chart(shifts).encode(
            x=alt.X("window:O", title="window starting"),
            y=alt.Y("PSI:Q", title="PSI (size of the shift)"),
            color="column:N",
        )
        rings = lines.mark_point(size=120, color="red", filled=False).transform_filter(
            "datum.drift"
        )
        st.altair_chart(lines.mark_line(point=True) + rings)
        st.caption(f"Red rings: drift (significant, and PSI at least {report['psi_threshold']}).")

    key = "accuracy" if report["task"] == "classification" else "mae"
    st.subheader(f"Live {key.replace('mae', 'mean absolute error')}")
    figures = pd.DataFrame(
        [{"window": w["start"][:10], **w["performance"]} for w in windows if w["performance"][key]]
    )
    if figures.empty:
        st.caption("No feedback yet: live performance needs the truth for some predictions.")
    else:
        base = alt.Chart(figures).encode(x=alt.X("window:O", title="window starting"))
        band = base.mark_area(opacity=0.25).encode(
            y=alt.Y(f"{key}_low:Q", title=key, scale=alt.Scale(zero=False)), y2=f"{key}_high:Q"
        )
        line = base.mark_line(point=True).encode(y=f"{key}:Q", tooltip=["labelled", key])
        st.altair_chart(band + line)
        st.caption("Shaded: the 95% interval. Recent windows have few labels: the truth is late.")

    if report["latest_window"] is not None:
        with st.expander("Every test of the latest tested window"):
            st.dataframe(pd.DataFrame(windows[report["latest_window"]]["tests"]), hide_index=True)

st.subheader("Recent predictions")
recent = overview["recent"]
if recent:
    rows = [
        {"time": r["logged_at"][:19].replace("T", " "), "request": r["request_id"], "row": r["row"],
         "prediction": r["prediction"], "truth": r["truth"], **r["inputs"]}
        for r in recent
    ]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True)
else:
    st.caption("Nothing logged yet: predictions appear here as the API answers them.")
