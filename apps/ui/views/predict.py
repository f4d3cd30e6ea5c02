"""Predict: describe one penguin in a form built from the model's input schema."""

import math

import altair as alt
import pandas as pd
import streamlit as st

from apps.ui.common import penguins, show_problem, source_and_model
from apps.ui.records import explain, percentile
from apps.ui.source import SourceError

UNKNOWN = "unknown"


def default_value(column: dict, data: pd.DataFrame) -> float:
    """A typical penguin's value (the median), inside the allowed range."""
    low, high = column["minimum"], column["maximum"]
    typical = data[column["name"]].median() if column["name"] in data else (low + high) / 2
    step = step_for(column)
    return min(max(round(float(typical) / step) * step, low), high)


def step_for(column: dict) -> float:
    """A step of about a hundredth of the range: 0.1 mm for bills, 10 g for mass."""
    return 10.0 ** math.floor(math.log10((column["maximum"] - column["minimum"]) / 100))


def input_widget(column: dict, data: pd.DataFrame, key: str) -> object:
    """One widget for one column: a select box for a category, a number box for a number."""
    unit = f" ({column['unit']})" if column.get("unit") else ""
    label = f"{column.get('description') or column['name']}{unit}"
    help_text = f"`{column['name']}`"
    if column["type"] == "category":
        options = list(column["categories"]) + ([UNKNOWN] if column["nullable"] else [])
        choice = st.selectbox(label, options, key=key, help=help_text)
        return None if choice == UNKNOWN else choice
    step = step_for(column)
    return st.number_input(
        label,
        min_value=float(column["minimum"]),
        max_value=float(column["maximum"]),
        value=default_value(column, data),
        step=step,
        format="%.1f" if step < 1 else "%.0f",
        key=key,
        help=f"{help_text}: {column['minimum']:g} to {column['maximum']:g}",
    )


def probability_chart(probabilities: dict[str, float], predicted: str) -> alt.Chart:
    """One bar per class, the predicted one highlighted, on a 0-100 % axis."""
    frame = pd.DataFrame(
        {"class": list(probabilities), "probability": list(probabilities.values())}
    )
    frame["predicted"] = frame["class"] == predicted
    return (
        alt.Chart(frame, height=40 * len(frame) + 40)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("class:N", sort=None, title=None),
            color=alt.Color("predicted:N", legend=None),
            tooltip=["class", alt.Tooltip("probability:Q", format=".1%")],
        )
    )


st.title("Predict")
st.caption("Describe a penguin: the model answers, and shows how sure it is.")

source, model = source_and_model()

columns = model["input_schema"]["columns"]
data = penguins()
target = model["outputs"]["target"]
numbers = [c["name"] for c in columns if c["type"] == "number" and c["nullable"]]

with st.form("penguin"):
    record = {}
    left, right = st.columns(2)
    for index, column in enumerate(columns):
        with left if index % 2 == 0 else right:
            record[column["name"]] = input_widget(
                column, data, key=f"{model['name']}.{column['name']}"
            )
    not_measured = st.multiselect(
        "Not measured (the model uses a typical value instead)",
        numbers,
        key=f"{model['name']}.not-measured",
    )
    submitted = st.form_submit_button("Predict", type="primary", icon=":material/send:")

if submitted:
    record.update(dict.fromkeys(not_measured))
    try:
        (answer,) = source.predict(model["name"], [record], model["version"])
    except SourceError as error:
        show_problem(error)
    # Session state outlives the rerun: the answer stays while the user changes the
    # form, and is still there after a visit to another page.
    st.session_state["last-answer"] = {
        "model": model["name"],
        "version": model["version"],
        "record": record,
        "answer": answer,
    }

last = st.session_state.get("last-answer")
if not last or (last["model"], last["version"]) != (model["name"], model["version"]):
    st.info("Fill in the form and press **Predict**.", icon=":material/arrow_upward:")
    st.stop()

answer, used = last["answer"], last["record"]
st.subheader("The model's answer")
if "probabilities" in answer:
    predicted = answer["prediction"]
    sure = answer["probabilities"][predicted]
    st.metric(f"Predicted {target}", predicted)
    st.caption(f"Probability {sure:.1%}. The probability of every {target}:")
    st.altair_chart(probability_chart(answer["probabilities"], predicted), width="stretch")
    group = predicted
else:
    unit = model["outputs"].get("unit") or ""
    value = answer["prediction"]
    st.metric(f"Predicted {target}", f"{value:,.0f} {unit}".strip())
    if target in data:
        share = percentile(value, data[target])
        st.caption(f"More than {share:.0f}% of the penguins in the data set.")
    group = used.get("species")

st.subheader("Where this penguin sits in the data")
st.caption(
    f"Compared with the {len(data)} penguins of the Palmer data set"
    f"{f' and with the {group} penguins among them' if group else ''}."
)
st.dataframe(explain(used, columns, data, group=group), hide_index=True)
