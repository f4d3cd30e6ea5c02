"""Model: what a model expects and answers, how good it is, and what it was trained on."""

import pandas as pd
import streamlit as st

from apps.ui.common import schema_table, source_and_model

st.title("Model")
st.caption("Everything here comes from the model's manifest, as the source serves it.")

source, model = source_and_model()

st.markdown(
    f"**{model['name']}**, version {model['version']}, a {model['task']} model. "
    f"{model['description']}"
)
backend, created, versions = st.columns(3)
backend.metric("Backend", model["backend"], help=f"Models from {source.label}.")
created.metric("Trained", model["created_at"][:10], help=model["created_at"])
versions.metric("Versions", ", ".join(str(v) for v in model["versions"]))

st.subheader("Held-out metrics")
data = model["training_data"]
st.caption(f"Measured on {data.get('test_rows', '?')} penguins the model never saw in training.")
metrics = model["metrics"].get("test", {})
for column, (name, value) in zip(st.columns(max(len(metrics), 1)), metrics.items(), strict=False):
    column.metric(name.replace("_", " "), f"{value:.3f}")

st.subheader("Input")
st.dataframe(schema_table(model["input_schema"]["columns"]), hide_index=True)

st.subheader("Output")
outputs = model["outputs"]
if outputs.get("classes"):
    st.markdown(
        f"`{outputs['target']}`: one of {', '.join(outputs['classes'])}, with a probability "
        "for each."
    )
else:
    st.markdown(f"`{outputs['target']}`: a number ({outputs.get('unit') or 'no unit'}).")

st.subheader("Training data")
facts = {
    "source": data.get("source"),
    "rows": data.get("rows"),
    "training rows": data.get("train_rows"),
    "held-out rows": data.get("test_rows"),
    "split": ", ".join(f"{k}={v}" for k, v in data.get("split", {}).items()),
    "sha256 of the data": data.get("sha256"),
}
st.dataframe(
    pd.DataFrame({"fact": list(facts), "value": [str(v) for v in facts.values()]}),
    hide_index=True,
)

with st.expander("The full metadata (JSON)"):
    st.json(model)
