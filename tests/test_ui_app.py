"""The Streamlit UI, page by page, with Streamlit's own test runner (no browser).

``AppTest`` runs the app's scripts in this process, as the server would for one user,
and lets a test set widgets, press buttons and read what is on the page. Every test
runs against the real API (``api``) and with the models loaded in-process (``local``);
the API-down tests point the UI at a port where nothing listens.
"""

import json
import socket
import threading

import pytest
from streamlit.testing.v1 import AppTest

from apps.config import REPO_ROOT

from .conftest import CLASSIFIER_INPUTS
from .servers import free_port

APP = REPO_ROOT / "apps" / "ui" / "app.py"
PAGES = {"predict": "Predict", "batch": "Batch", "model": "Model", "explore": "Explore"}
RUN_SECONDS = 60  # the first run imports pandas, altair and the models

GENTOO = {
    "island": "Biscoe",
    "sex": "female",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 14.5,
    "flipper_length_mm": 215.0,
    "body_mass_g": 5000.0,
}

BAD_ROWS_CSV = b"""island,sex,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,note
Torgersen,male,39.1,18.7,181,3750,an Adelie
Atlantis,female,46.5,17.9,192,3500,no such island
Biscoe,,47.5,15,217,5200,a Gentoo of unknown sex

Dream,female,abc,17.9,192,3500,text for a number
Dream,female,46.5,17.9,999,3500,flipper too long
Biscoe,,,,,,nothing measured
"""


@pytest.fixture(params=["local", "api"])
def mode(request, monkeypatch) -> str:
    """Both ways to run the UI: models loaded in-process, or through the API."""
    if request.param == "api":
        monkeypatch.setenv("PENGUINS_API_URL", request.getfixturevalue("api_url"))
    else:
        monkeypatch.delenv("PENGUINS_API_URL", raising=False)
    return request.param


@pytest.fixture
def api_down(monkeypatch) -> str:
    """The UI configured for an API on a port where nothing listens."""
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PENGUINS_API_URL", url)
    return url


def open_page(page: str, model: str | None = None) -> AppTest:
    """Run the app, go to one page, and pick a model if asked; nothing may fail."""
    at = AppTest.from_file(APP, default_timeout=RUN_SECONDS).run()
    assert not at.exception
    if page != "predict":
        at.switch_page(f"views/{page}.py").run()
    if model:
        at.selectbox(key="model").set_value(model).run()
    assert not at.exception
    return at


def fill(at: AppTest, model: str, record: dict) -> AppTest:
    """Set the Predict form's widgets from a record (None: unknown) and press Predict."""
    not_measured = []
    for name, value in record.items():
        key = f"{model}.{name}"
        if isinstance(value, str):
            at.selectbox(key=key).set_value(value)
        elif value is None and any(s.key == key for s in at.selectbox):
            at.selectbox(key=key).set_value("unknown")
        elif value is None:
            not_measured.append(name)
        else:
            at.number_input(key=key).set_value(value)
    at.multiselect(key=f"{model}.not-measured").set_value(not_measured)
    at.button(key="FormSubmitter:penguin-Predict").click().run()
    assert not at.exception
    return at


def table_with(at: AppTest, column: str):
    """The first table on the page that has this column."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


# --- every page ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_errors(mode, page):
    at = open_page(page)
    assert at.title[0].value == PAGES[page]
    assert not at.error
    where = "the API at" if mode == "api" else "the local registry"
    assert where in at.sidebar.caption[0].value


# --- Predict ------------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_opens_on_the_classifier(mode):
    at = open_page("predict")
    assert at.selectbox(key="model").value == "species-classifier"
    assert "how sure it is" in texts(at.caption)


@pytest.mark.slow
def test_the_form_is_built_from_the_input_schema(mode):
    at = open_page("predict", "species-classifier")
    for name, kind, nullable, allowed in CLASSIFIER_INPUTS:
        key = f"species-classifier.{name}"
        if kind == "category":
            assert at.selectbox(key=key).options == allowed + (["unknown"] if nullable else [])
        else:
            box = at.number_input(key=key)
            assert (box.min, box.max) == allowed
    nullable = [name for name, kind, nullable, _ in CLASSIFIER_INPUTS if kind == "number"]
    assert at.multiselect(key="species-classifier.not-measured").options == nullable
    assert "Fill in the form" in texts(at.info)


@pytest.mark.slow
def test_predict_shows_the_species_its_probabilities_and_the_context(mode):
    at = fill(open_page("predict", "species-classifier"), "species-classifier", GENTOO)
    assert at.metric[0].label == "Predicted species"
    assert at.metric[0].value == "Gentoo"
    assert at.get("vega_lite_chart"), "the probabilities chart is missing"
    context = at.dataframe[0].value
    assert list(context["input"]) == [
        "island",
        "sex",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
    ]
    assert "among Gentoo penguins" in context.columns
    flipper = context.set_index("input").loc["flipper_length_mm", "among all penguins"]
    assert flipper.startswith("larger than ") and "% of 342 penguins" in flipper


@pytest.mark.slow
def test_unknown_values_are_allowed_where_the_schema_allows_them(mode):
    record = {**GENTOO, "sex": None, "bill_depth_mm": None, "body_mass_g": None}
    at = fill(open_page("predict", "species-classifier"), "species-classifier", record)
    assert at.metric[0].value == "Gentoo"
    context = at.dataframe[0].value.set_index("input")
    assert context.loc["sex", "value"] == "unknown"
    assert "typical value" in context.loc["body_mass_g", "among all penguins"]


@pytest.mark.slow
def test_predict_a_body_mass(mode):
    record = {"species": "Gentoo", "island": "Biscoe", "sex": "male", "flipper_length_mm": 225.0}
    at = fill(open_page("predict", "body-mass-regressor"), "body-mass-regressor", record)
    assert at.metric[0].label == "Predicted body_mass_g"
    grams = float(at.metric[0].value.removesuffix(" g").replace(",", ""))
    assert 4500 < grams < 6500
    assert "among Gentoo penguins" in at.dataframe[0].value.columns


@pytest.mark.slow
def test_the_answer_survives_a_visit_to_another_page(mode):
    at = fill(open_page("predict", "species-classifier"), "species-classifier", GENTOO)
    at.switch_page("views/model.py").run()
    assert at.selectbox(key="model").value == "species-classifier"
    at.switch_page("views/predict.py").run()
    assert not at.exception
    assert at.metric[0].value == "Gentoo"


# --- Batch --------------------------------------------------------------------------------


def upload(at: AppTest, content: bytes, name: str = "penguins.csv") -> AppTest:
    at.file_uploader[0].set_value((name, content, "text/csv")).run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_batch_scores_the_good_rows_and_lists_the_bad_ones(mode):
    at = upload(open_page("batch", "species-classifier"), BAD_ROWS_CSV)
    counts = {metric.label: metric.value for metric in at.metric}
    assert counts == {"Rows": "6", "Scored": "3", "Not scored": "3"}
    problems = table_with(at, "message")
    assert problems.to_dict("records") == [
        {
            "row": 3,
            "field": "island",
            "message": "unknown category; allowed values are ['Biscoe', 'Dream', 'Torgersen']",
        },
        {"row": 6, "field": "bill_length_mm", "message": "must be a number"},
        {"row": 7, "field": "flipper_length_mm", "message": "must be at most 250"},
    ]
    results = table_with(at, "predicted_species")
    assert list(results["note"]) == [
        "an Adelie",
        "no such island",
        "a Gentoo of unknown sex",
        "text for a number",
        "flipper too long",
        "nothing measured",
    ]
    assert list(results["predicted_species"][[0, 2]]) == ["Adelie", "Gentoo"]
    assert results["predicted_species"][[1, 3, 4]].isna().all()
    assert results["predicted_species"][5] in {"Adelie", "Chinstrap", "Gentoo"}
    assert results["problems"][4] == "flipper_length_mm: must be at most 250"
    assert results["problems"][[0, 2, 5]].eq("").all()
    probabilities = results[["probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]]
    assert probabilities.iloc[[0, 2, 5]].sum(axis=1).round(3).eq(1).all()
    assert at.download_button[-1].label == "Download the results (CSV)"
    assert "Not used by the model, kept in the results: note." in texts(at.info)


@pytest.mark.slow
def test_batch_with_only_bad_rows_scores_nothing_and_says_why(mode):
    content = b"island,bill_length_mm\nAtlantis,40\nDream,400\n"
    at = upload(open_page("batch", "species-classifier"), content)
    counts = {metric.label: metric.value for metric in at.metric}
    assert counts == {"Rows": "2", "Scored": "0", "Not scored": "2"}
    assert list(table_with(at, "message")["row"]) == [2, 3]
    assert "No column sex, bill_depth_mm" in texts(at.warning)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"", "the file is empty"),
        (b"sex,bill_length_mm\nmale,40\n", "has no column island, which the model needs"),
    ],
)
def test_batch_refuses_a_file_it_cannot_use_with_a_plain_message(mode, content, message):
    at = upload(open_page("batch", "species-classifier"), content)
    assert message in texts(at.error)
    assert not at.metric


# --- Model and Explore --------------------------------------------------------------------


@pytest.mark.slow
def test_model_page_shows_the_manifest(mode, registry):
    at = open_page("model", "species-classifier")
    manifest = registry.manifest("species-classifier").data
    shown = {metric.label: metric.value for metric in at.metric}
    assert "a classification model" in texts(at.markdown)
    assert shown["Backend"] == "onnx"
    assert shown["Versions"] == ", ".join(str(v) for v in registry.versions("species-classifier"))
    for name, value in manifest["metrics"]["test"].items():
        assert shown[name.replace("_", " ")] == f"{value:.3f}"
    schema = at.dataframe[0].value
    assert list(schema["column"]) == [name for name, *_ in CLASSIFIER_INPUTS]
    allowed = list(schema["allowed values"])[:3]
    assert allowed == ["Biscoe, Dream, Torgersen", "female, male", "25 to 70 mm"]
    training = dict(at.dataframe[1].value.values)
    assert training["rows"] == str(manifest["training_data"]["rows"])
    assert json.loads(at.json[0].value)["name"] == "species-classifier"


@pytest.mark.slow
def test_explore_page_filters_the_data(mode):
    at = open_page("explore")
    assert "344 of 344 penguins" in texts(at.caption)
    at.multiselect[1].set_value(["Torgersen"]).run()
    assert not at.exception
    assert "52 of 344 penguins" in texts(at.caption)
    assert len(at.get("vega_lite_chart")) == 3


# --- when the API is down or slow ---------------------------------------------------------


@pytest.mark.parametrize("page", ["predict", "batch", "model"])
def test_api_down_gives_a_plain_message_and_a_retry_button(api_down, page):
    at = open_page(page)
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("The API is not answering")
    assert api_down in message
    assert "Traceback" not in message
    assert [button.label for button in at.button] == ["Retry"]
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value.startswith("The API is not answering")


def test_explore_still_works_when_the_api_is_down(api_down):
    at = open_page("explore")
    assert not at.error
    assert "344 of 344 penguins" in texts(at.caption)


@pytest.fixture
def silent_server(monkeypatch):
    """A server that accepts connections and never answers, as a hung API would."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connections.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr("apps.ui.source.TIMEOUT", 0.5)
    monkeypatch.setenv("PENGUINS_API_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    yield
    stop.set()
    thread.join()
    for connection in connections:
        connection.close()
    listener.close()


def test_a_slow_api_gives_a_plain_message_and_a_retry_button(silent_server):
    at = open_page("model")
    assert len(at.error) == 1
    assert "no answer within 0.5 s" in at.error[0].value
    assert [button.label for button in at.button] == ["Retry"]
