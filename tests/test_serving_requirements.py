"""The container images install exactly the pinned versions, and only what they need.

``requirements-serve.txt`` (API, full variant), ``requirements-serve-onnx.txt`` (API, lean
ONNX variant) and ``requirements-ui.txt`` (UI) are subsets of ``requirements.txt``, so
that an image runs the same versions as the notebooks and the tests. The Dockerfiles
install them with ``pip install --no-deps``: a missing transitive pin would only show
when the image starts, so the lists are checked here, against the imports of the apps.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVING_FILES = (
    "requirements-serve.txt",
    "requirements-serve-onnx.txt",
    "requirements-ui.txt",
    "requirements-batch.txt",
)
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;#]+)$")
NOT_IN_LEAN_IMAGE = ("scikit-learn", "scipy", "pandas", "skops", "joblib")


def normalise(name: str) -> str:
    """Package names compare case-insensitively, with ``-``, ``_`` and ``.`` alike (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements file without comments and blank lines."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def project_pins() -> dict[str, str]:
    """``requirements.txt`` as {normalised name: version}, environment markers dropped."""
    pins = {}
    for line in requirement_lines(ROOT / "requirements.txt"):
        name, _, version = line.split(";", 1)[0].strip().partition("==")
        pins[normalise(name)] = version.strip()
    return pins


def serving_pins(file_name: str) -> dict[str, str]:
    """A serving requirements file as {normalised name: version}."""
    pins = {}
    for line in requirement_lines(ROOT / file_name):
        match = PIN.match(line)
        assert match, f"{file_name}: {line!r} is not an exact pin name==version"
        pins[normalise(match["name"])] = match["version"]
    return pins


@pytest.mark.parametrize("file_name", SERVING_FILES)
def test_every_line_is_an_exact_pin_from_requirements_txt(file_name):
    pins = project_pins()
    lines = requirement_lines(ROOT / file_name)
    assert lines, f"{file_name} is empty"
    problems = []
    seen = set()
    for line in lines:
        match = PIN.match(line)
        if not match:
            problems.append(f"{line!r}: not an exact pin (name==version, no marker, no range)")
            continue
        name = normalise(match["name"])
        if name in seen:
            problems.append(f"{line!r}: listed twice")
        seen.add(name)
        if name in ("pip", "setuptools", "wheel"):
            problems.append(f"{line!r}: installers are not pinned here")
        elif name not in pins:
            problems.append(f"{line!r}: not in requirements.txt")
        elif pins[name] != match["version"]:
            problems.append(f"{line!r}: requirements.txt pins {pins[name]}")
    assert not problems, f"{file_name}:\n  " + "\n  ".join(problems)


def test_the_lean_image_has_no_scikit_learn_scipy_or_pandas():
    lean = serving_pins("requirements-serve-onnx.txt")
    assert not set(lean) & set(NOT_IN_LEAN_IMAGE), sorted(set(lean) & set(NOT_IN_LEAN_IMAGE))
    assert {"onnxruntime", "gunicorn", "flask", "numpy"} <= set(lean)


def test_the_full_image_has_everything_the_lean_one_has_and_scikit_learn():
    full, lean = serving_pins("requirements-serve.txt"), serving_pins("requirements-serve-onnx.txt")
    assert set(lean) <= set(full), sorted(set(lean) - set(full))
    assert {"scikit-learn", "skops", "joblib", "pandas", "scipy"} <= set(full)


# The packages each image is made from, as in the header of its file; the files add their
# dependencies. The tests below check both halves: that the apps import nothing else,
# and that every dependency of these is pinned.
DIRECT = {
    "requirements-serve-onnx.txt": (
        "Flask",
        "flask-cors",
        "Flask-Limiter",
        "gunicorn",
        "numpy",
        "onnxruntime",
        "orjson",
        "prometheus_client",
        "flask-openapi3-swagger",
        "pydantic",  # the request contracts and the OpenAPI document
        "pydantic-core",
        "typing-extensions",  # typed dicts of the answers
        "Werkzeug",  # Flask's, but imported by the API itself too
        "limits",  # Flask-Limiter's, but the API's SQLite store is a limits storage
        "SQLAlchemy",  # the prediction log (notebook 07)
        "psycopg",  # ... on PostgreSQL
        "psycopg-binary",
        "cryptography",  # the models' signatures
    ),
    "requirements-ui.txt": (
        "streamlit",
        "requests",
        "palmerpenguins",
        "numpy",
        "pandas",
        "SQLAlchemy",
    ),
    "requirements-batch.txt": ("numpy", "onnxruntime", "pyarrow", "tqdm", "cryptography"),
}
DIRECT["requirements-serve.txt"] = (
    *DIRECT["requirements-serve-onnx.txt"],
    "scikit-learn",
    "skops",
    "joblib",
    "pandas",
)
LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": ""}
"""The images run Linux, whatever the machine that runs these tests."""


def dependency_closure(names) -> set[str]:
    """The packages ``names`` need, recursively, read from the installed metadata."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement

    needed, todo = set(), [normalise(name) for name in names]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for line in distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(LINUX):
                todo.append(normalise(requirement.name))
    return needed


@pytest.mark.parametrize("file_name", SERVING_FILES)
def test_every_dependency_of_the_direct_packages_is_pinned(file_name):
    missing = dependency_closure(DIRECT[file_name]) - set(serving_pins(file_name))
    assert not missing, f"{file_name} lacks {sorted(missing)}: re-derive it (see its header)"


# What each image runs, in a fresh interpreter: the models are loaded and used, so that
# lazy imports happen too. REPORT then prints the distributions of the third-party
# modules that the apps' own modules import and that were really imported.
API_PROBE = """
import os, tempfile
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp())
import gunicorn.app.wsgiapp
from apps.api.wsgi import app
client = app.test_client()
penguin = {"species": "Gentoo", "island": "Biscoe", "sex": "female", "bill_length_mm": 46.5,
           "bill_depth_mm": 14.5, "flipper_length_mm": 215, "body_mass_g": 4800}
for name in ("species-classifier", "body-mass-regressor"):
    columns = client.get(f"/v1/models/{name}").get_json()["input_schema"]["columns"]
    record = {column["name"]: penguin[column["name"]] for column in columns}
    answer = client.post(f"/v1/models/{name}/predict", json={"record": record})
    assert answer.status_code == 200, answer.get_json()
assert client.get("/docs/static/css/swagger-ui.css").status_code == 200
assert client.get("/metrics").status_code == 200
"""
UI_PROBE = """
import glob
import apps.client, apps.data, apps.ui.common, apps.ui.records, apps.ui.source
apps.data.load_data()
# The pages are scripts that Streamlit runs; parse them for their imports.
import ast
for page in glob.glob("apps/ui/views/*.py") + ["apps/ui/app.py"]:
    for node in ast.walk(ast.parse(open(page).read())):
        if isinstance(node, ast.Import):
            [__import__(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            __import__(node.module)
"""
BATCH_PROBE = """
import sys, tempfile
# Not in the batch image: make them fail to import here too (pyarrow tries pandas).
class NotInTheImage:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pandas", "sklearn", "scipy", "dask", "distributed"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NotInTheImage())
from pathlib import Path
from apps.batch.cli import main
folder = Path(tempfile.mkdtemp())
(folder / "in.csv").write_text("island,sex,bill_length_mm\\nBiscoe,male,45\\nAtlantis,,40\\n")
code = main(["score", str(folder / "in.csv"), "--model", "species-classifier",
             "--output", str(folder / "out"), "--format", "csv"])
assert code == 0, code
code = main(["score", str(folder / "in.csv"), "--model", "species-classifier",
             "--output", str(folder / "p")])
assert code == 0, code
"""
REPORT = """
import ast, importlib.metadata as md, json, sys
found = md.packages_distributions()
imported = set()
for name, module in list(sys.modules.items()):
    if (name == "apps" or name.startswith("apps.")) and getattr(module, "__file__", None):
        for node in ast.walk(ast.parse(open(module.__file__, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module)
tops = {name.split(".")[0] for name in imported if name in sys.modules}
print(json.dumps(sorted({d for top in tops for d in found.get(top, [])})))
"""


def imported_distributions(code: str, env: dict[str, str]) -> set[str]:
    """The distributions of the third-party modules the apps imported while running ``code``."""
    result = subprocess.run(
        [sys.executable, "-c", code + REPORT],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = json.loads(result.stdout.strip().splitlines()[-1])
    return {normalise(name) for name in names} - {"penguins-deploy-course"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file_name", "code", "env"),
    [
        ("requirements-serve-onnx.txt", API_PROBE, {"API_BACKEND": "onnx"}),
        ("requirements-serve.txt", API_PROBE, {"API_BACKEND": "sklearn"}),
        ("requirements-ui.txt", UI_PROBE, {}),
        ("requirements-batch.txt", BATCH_PROBE, {}),
    ],
    ids=["api-onnx", "api-full-sklearn", "ui", "batch"],
)
def test_the_apps_import_only_what_their_image_is_made_from(file_name, code, env):
    """A new import in the apps must be added to the image's packages too."""
    direct = {normalise(name) for name in DIRECT[file_name]}
    extra = imported_distributions(code, env) - direct
    assert not extra, f"the apps import {sorted(extra)}: add them to DIRECT and to {file_name}"
