"""JSON or binary tensor data: bytes on the wire and time per call, for V2 inference.

Run by hand from the repository root (it installs nothing)::

    .venv/bin/python bench/v2_binary.py [--rows 1000] [--calls 200]

It starts the real API (gunicorn, ONNX backend, ``API_WORKERS=1``) on a free port and
calls ``POST /v2/models/species-classifier/infer`` with ``tritonclient``, the protocol's
reference client, in four modes: everything as JSON, binary inputs, binary outputs, and
binary both ways. Each mode sends the same complete penguins (drawn with replacement),
numbers as FP64 or as FP32. The modes take turns call by call, so that a change in the
machine's load hits all of them alike; the table shows the median and the 90th
percentile of the client-side time per call, and the request and answer sizes.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import tritonclient.http as triton_http  # noqa: E402

from apps import data  # noqa: E402
from bench.servers import running_api  # noqa: E402

MODEL = "species-classifier"
COLUMNS = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
MODES = {  # (inputs in binary, outputs in binary)
    "JSON": (False, False),
    "binary inputs": (True, False),
    "binary outputs": (False, True),
    "binary both ways": (True, True),
}


def penguins(rows: int) -> dict[str, np.ndarray]:
    frame = data.load_data()[COLUMNS].dropna().sample(rows, replace=True, random_state=0)
    return {c: frame[c].to_numpy(dtype=object if c in ("island", "sex") else np.float64)
            for c in COLUMNS}  # fmt: skip


def request(columns: dict[str, np.ndarray], number_type: str, binary_in: bool, binary_out: bool):
    inputs = []
    for name, values in columns.items():
        if values.dtype != object:
            values = values.astype({"FP64": np.float64, "FP32": np.float32}[number_type])
        datatype = "BYTES" if values.dtype == object else number_type
        tensor = triton_http.InferInput(name, [len(values)], datatype)
        inputs.append(tensor.set_data_from_numpy(values, binary_data=binary_in))
    outputs = [triton_http.InferRequestedOutput(n, binary_data=binary_out)
               for n in ("predict", "predict_proba")]  # fmt: skip
    return inputs, outputs


def sizes(url: str, inputs, outputs) -> tuple[int, int]:
    """The request's and the answer's bytes, sent as tritonclient sends them."""
    body, json_length = triton_http.InferenceServerClient.generate_request_body(inputs, outputs)
    headers = {} if json_length is None else {"Inference-Header-Content-Length": str(json_length)}
    answer = requests.post(f"{url}/v2/models/{MODEL}/infer", data=body, headers=headers, timeout=30)
    answer.raise_for_status()
    return len(body), len(answer.content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200, help="calls per mode and type")
    args = parser.parse_args(argv)
    columns = penguins(args.rows)
    with running_api({"API_BACKEND": "onnx", "API_WORKERS": "1"}) as url:
        client = triton_http.InferenceServerClient(url.removeprefix("http://"))
        cases = {
            (mode, number_type): request(columns, number_type, *flags)
            for number_type in ("FP64", "FP32")
            for mode, flags in MODES.items()
        }
        times = {case: [] for case in cases}
        for inputs, outputs in cases.values():  # warm-up, and every mode answers every row
            labels = client.infer(MODEL, inputs, outputs=outputs).as_numpy("predict")
            assert len(labels) == args.rows
        for _ in range(args.calls):
            for case, (inputs, outputs) in cases.items():
                started = time.perf_counter()
                client.infer(MODEL, inputs, outputs=outputs)
                times[case].append(time.perf_counter() - started)
        measured = {case: sizes(url, *cases[case]) for case in cases}
        client.close()
    print(f"V2 inference, {args.rows} penguins per call, {args.calls} calls per row\n")
    print("| numbers | mode | request | answer | median ms | p90 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for (mode, number_type), samples in times.items():
        request_bytes, answer_bytes = measured[mode, number_type]
        p90 = statistics.quantiles(samples, n=10)[-1]
        kilobytes = f"{request_bytes / 1000:.0f} kB | {answer_bytes / 1000:.0f} kB"
        milliseconds = f"{statistics.median(samples) * 1000:.1f} | {p90 * 1000:.1f}"
        print(f"| {number_type} | {mode} | {kilobytes} | {milliseconds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
