"""Two ways to run the same model: scikit-learn, or ONNX Runtime.

Both take the columns made by :meth:`InputSchema.to_columns` and answer in the same
shapes, so an app can switch backend with one setting. Each imports its library only
when it is used: an ONNX-only server never needs scikit-learn, SciPy or pandas.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

SKOPS_TRUSTED_TYPES = ("numpy.dtype",)
"""The only types our skops files may ask for beyond skops' own safe defaults.

An explicit list, checked before loading: a file that needs anything else is refused,
never trusted wholesale.
"""


class SklearnBackend:
    """A fitted scikit-learn Pipeline, fed a pandas DataFrame built from the columns."""

    name = "sklearn"

    def __init__(self, pipeline):
        self.pipeline = pipeline

    @classmethod
    def from_joblib(cls, data: bytes) -> "SklearnBackend":
        """Unpickle a joblib file. Only ever call this on bytes whose hash was verified."""
        import joblib

        return cls(joblib.load(io.BytesIO(data)))

    @classmethod
    def from_skops(cls, data: bytes) -> "SklearnBackend":
        """Load a skops file, refusing any type outside :data:`SKOPS_TRUSTED_TYPES`."""
        import skops.io

        from apps.registry.errors import UntrustedTypesError

        unexpected = sorted(set(skops.io.get_untrusted_types(data=data)) - set(SKOPS_TRUSTED_TYPES))
        if unexpected:
            raise UntrustedTypesError(
                f"the skops file asks for types that are not trusted: {unexpected}; "
                "inspect them before adding any to SKOPS_TRUSTED_TYPES"
            )
        return cls(skops.io.loads(data, trusted=list(SKOPS_TRUSTED_TYPES)))

    def _frame(self, columns: dict[str, np.ndarray]):
        import pandas as pd

        return pd.DataFrame(columns)

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Class labels (classifier) or values (regressor), one per row."""
        return np.asarray(self.pipeline.predict(self._frame(columns)))

    def predict_proba(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities, one column per class in the manifest's order."""
        return np.asarray(self.pipeline.predict_proba(self._frame(columns)))


class OnnxBackend:
    """An ONNX graph run by ONNX Runtime, with one named input per column.

    Numbers go in as float32 with NaN for missing; categories as strings, with the
    empty string for missing, which the graph's one-hot encoder treats as unknown,
    exactly as scikit-learn treats a missing category.
    """

    name = "onnx"

    def __init__(self, model_bytes: bytes, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _feeds(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        for name, kind in self.input_types.items():
            values = columns[name]
            values = _texts(values) if kind == "tensor(string)" else values.astype(np.float32)
            feeds[name] = values.reshape(-1, 1)
        return feeds

    def _run(self, columns: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, self._feeds(columns))

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Class labels (classifier) or values as float64 (regressor), one per row."""
        first = self._run(columns)[0]
        return first.ravel() if first.dtype.kind in "OU" else first.ravel().astype(np.float64)

    def predict_proba(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities as float64, one column per class in the manifest's order."""
        return self._run(columns)[1].astype(np.float64)


def _texts(values: np.ndarray) -> np.ndarray:
    """Categories as the ONNX graph takes them: text, and the empty string for missing.

    Validated columns hold only text and None, replaced with one NumPy comparison (a
    few times faster on large batches); anything else is looked at value by value.
    """
    if set(map(type, values)) <= {str, type(None)}:
        # NumPy's stubs leave out None, which an object array compares element by element.
        missing = np.equal(values, None)  # type: ignore[call-overload]
        return np.where(missing, "", values)
    return np.array([v if isinstance(v, str) else "" for v in values], dtype=object)


class Backend(Protocol):
    """What every backend does: predict from the columns of validated records."""

    name: str

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray: ...

    def predict_proba(self, columns: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class BackendKind:
    """How the registry makes a backend: from which file formats, after which checks."""

    loaders: dict[str, Callable[[bytes], Backend]]
    """File format -> the function that loads its verified bytes; the first is the default."""
    pinned_libraries: tuple[str, ...] = ()
    """Libraries whose installed versions must be the manifest's (an unpickled model may
    load and then predict wrongly under another version); ONNX needs none."""

    @property
    def default_format(self) -> str:
        return next(iter(self.loaders))


BACKENDS = {
    "sklearn": BackendKind(
        {"skops": SklearnBackend.from_skops, "joblib": SklearnBackend.from_joblib},
        pinned_libraries=("scikit-learn", "numpy"),
    ),
    "onnx": BackendKind({"onnx": OnnxBackend}),
}
"""Every backend by name: ``API_BACKEND``, ``--backend`` and ``load(backend=...)`` pick one."""
