"""Batch: score a whole CSV file; bad rows are listed with their reasons, never fatal."""

from pathlib import Path

import pandas as pd
import streamlit as st

from apps.ui import records
from apps.ui.common import penguins, schema_table, show_problem, source_and_model
from apps.ui.source import SourceError

st.title("Batch")
st.caption("Upload a CSV file: every valid row is scored, every other row says what is wrong.")

source, model = source_and_model()

columns = model["input_schema"]["columns"]
names = [column["name"] for column in columns]
target = model["outputs"]["target"]

with st.expander("What the file must look like"):
    st.markdown(
        "A header row with the column names below (in any order), then one penguin per "
        "row. An empty cell is an unknown value, allowed where the table says so. Other "
        "columns are not sent to the model but come back in the results."
    )
    st.dataframe(schema_table(columns), hide_index=True)
    example = penguins().sample(10, random_state=1)[names]
    st.download_button(
        "Download an example file",
        records.to_csv_bytes(example),
        file_name=f"{model['name']}-example.csv",
        mime="text/csv",
        on_click="ignore",  # a download needs no rerun of the script
        icon=":material/download:",
    )

upload = st.file_uploader("CSV file", type=["csv"])
if upload is None:
    st.stop()

try:
    file = records.read_csv(upload.getvalue(), columns)
except records.CsvError as error:
    st.error(f"{upload.name}: {error}", icon=":material/error:")
    st.stop()

required = [c["name"] for c in columns if c["name"] in file.missing and not c["nullable"]]
if required:
    st.error(
        f"{upload.name} has no column {', '.join(required)}, which the model needs: add it "
        "and upload the file again.",
        icon=":material/error:",
    )
    st.stop()
if file.missing:
    st.warning(f"No column {', '.join(file.missing)}: unknown in every row.")
if file.extra:
    st.info(f"Not used by the model, kept in the results: {', '.join(file.extra)}.")

valid, problems = records.check(file, columns)
predictions = []
if valid:
    try:
        with st.spinner(f"Scoring {len(valid)} rows ..."):
            predictions = source.predict(
                model["name"], [file.records[i] for i in valid], model["version"]
            )
    except SourceError as error:
        show_problem(error)

table = records.results_table(file, valid, predictions, problems, target)
rows, scored, rejected = st.columns(3)
rows.metric("Rows", len(file.rows))
scored.metric("Scored", len(valid))
rejected.metric("Not scored", len(file.rows) - len(valid))

if problems:
    st.subheader("Rows not scored")
    st.caption("Row numbers are lines of the file: the header is line 1.")
    st.dataframe(pd.DataFrame(problems), hide_index=True)

st.subheader("Results")
st.dataframe(table, hide_index=True)
st.download_button(
    "Download the results (CSV)",
    records.to_csv_bytes(table),
    file_name=f"{Path(upload.name).stem}-{model['name']}-v{model['version']}.csv",
    mime="text/csv",
    type="primary",
    on_click="ignore",
    icon=":material/download:",
)
