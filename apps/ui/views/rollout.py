"""Rollout: which version is in production, where each version came from, what the gate said.

Everything comes from the source (the API, or the local registry): the production version
from the list of models, each version's lineage and gate figures from its manifest.
"""

import altair as alt
import pandas as pd
import streamlit as st

from apps.ui.common import show_problem, source_and_model
from apps.ui.source import SourceError

st.title("Rollout")
st.caption("The version in production, the origin of every version, and the retraining gate.")

source, model = source_and_model()
try:
    entry = next(e for e in source.models() if e["name"] == model["name"])
    versions = {v: source.model(model["name"], v) for v in sorted(entry["versions"], reverse=True)}
except SourceError as error:
    show_problem(error)
production = entry.get("production", entry["latest"])
serving, newest = st.columns(2)
serving.metric("In production", f"version {production}", help="Requests that name no version.")
newest.metric("Newest version", f"version {entry['latest']}")

rows = []
for version, meta in versions.items():
    lineage, gate = meta.get("lineage", {}), meta.get("gate", {})
    metric = gate.get("primary_metric") or next(iter(meta["metrics"]["test"]))
    rows.append(
        {
            "version": version,
            "in production": "yes" if version == production else "",
            "trained": meta["created_at"][:10],
            "from": f"v{lineage['parent']['version']}" if lineage else "the original data",
            "held-out": f"{metric} {meta['metrics']['test'][metric]:.3f}",
            "why": lineage.get("reason", ""),
        }
    )
st.dataframe(pd.DataFrame(rows), hide_index=True)

st.subheader(f"The gate of version {model['version']}")
gate = model.get("gate")
if not gate:
    st.caption("This version was trained from the original data: it passed no gate.")
else:
    metric, champion = gate["primary_metric"], gate["champion"]
    scores = pd.DataFrame(
        [
            {"held-out rows": part, "model": who, metric: figures[part][metric]}
            for who, figures in (
                (f"champion (v{champion['version']})", champion["scores"]),
                (f"candidate (v{model['version']})", gate["candidate"]["scores"]),
            )
            for part in figures
        ]
    )
    dots = (
        alt.Chart(scores)
        .mark_point(filled=True, size=160)
        .encode(
            x=alt.X(f"{metric}:Q", scale=alt.Scale(zero=False)),
            y=alt.Y("held-out rows:N", sort=["all", "original", "feedback"]),
            color="model:N",
        )
    )
    st.altair_chart(dots)
    verdict = "passed" if gate["passed"] else "refused: " + "; ".join(gate["reasons"])
    st.caption(
        f"Both judged on the same {gate['held_out_rows']['all']} held-out rows; {metric}, "
        f"{gate['better']} is better, {gate['margin']:.0%} margin: {verdict}. ONNX differs "
        f"from scikit-learn by at most {gate['onnx_parity']['max_difference']:g}."
    )
st.info(
    f"Promote a version, or roll back, from a terminal: `python -m apps.rollout promote "
    f"--model {model['name']} --version N`, `python -m apps.rollout rollback --model "
    f"{model['name']}`. A running API follows within a second, without a failed request.",
    icon=":material/info:",
)
