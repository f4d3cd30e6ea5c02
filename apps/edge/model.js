// Load and run a model in the browser, the way apps.registry does on the server: read the
// manifest, download the ONNX file, and run it only if its sha256 is the one pinned there.
import * as ort from "./ort/ort.wasm.min.mjs";

// Threads need a cross-origin-isolated page, which most static hosts cannot give; one
// thread is plenty for a model of a few kilobytes. No worker: run in the page itself.
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;

/** A model file that differs from its manifest: it is refused, never run. */
export class IntegrityError extends Error {}

async function download(url) {
  const response = await fetch(url, { cache: "no-cache" }); // revalidate: models change
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
  return response;
}

/** Hex sha256 of some bytes, with the browser's Web Crypto (secure contexts only). */
export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new Error("Web Crypto is unavailable: open the page over https:// or from 127.0.0.1");
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Download a model version from `folder` (".../<name>/<version>/"), verify it, load it. */
export async function loadModel(folder) {
  const manifest = await (await download(`${folder}manifest.json`)).json();
  const [file, pinned] =
    Object.entries(manifest.artifacts).find(([, entry]) => entry.format === "onnx") ?? [];
  if (!file) throw new Error(`${manifest.name} v${manifest.version} has no ONNX file`);
  const bytes = new Uint8Array(await (await download(folder + file)).arrayBuffer());
  const actual = await sha256Hex(bytes);
  if (actual !== pinned.sha256) {
    throw new IntegrityError(
      `${manifest.name}/${manifest.version}/${file} has sha256 ${actual.slice(0, 12)}..., ` +
        `but the manifest pins ${pinned.sha256.slice(0, 12)}...: the file was changed or ` +
        "corrupted, so it is not run.",
    );
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  return { manifest, session, bytes: bytes.length };
}

// One tensor per input column, exactly as the server's OnnxBackend feeds them: numbers as
// float32 with NaN for a missing value, categories as strings with "" for a missing one.
function feeds(manifest, records) {
  const shape = [records.length, 1];
  const tensors = {};
  for (const column of manifest.input_schema.columns) {
    const values = records.map((record) => record[column.name] ?? null);
    tensors[column.name] =
      column.type === "category"
        ? new ort.Tensor("string", values.map((value) => value ?? ""), shape)
        : new ort.Tensor("float32", Float32Array.from(values, (value) => value ?? NaN), shape);
  }
  return tensors;
}

/**
 * Predictions for valid records, in the API's shape: `{prediction, probabilities}` per
 * record for a classifier (its label is the most probable class, as on the server), or
 * `{prediction}` with the value for a regressor.
 */
export async function predict(model, records) {
  const outputs = await model.session.run(feeds(model.manifest, records));
  const classes = model.manifest.outputs.classes;
  if (!classes) {
    const values = outputs[model.session.outputNames[0]].data;
    return Array.from(values, (value) => ({ prediction: value }));
  }
  const table = outputs[model.session.outputNames[1]].data; // rows x classes, row-major
  return records.map((_, row) => {
    const p = classes.map((_, k) => table[row * classes.length + k]);
    const best = p.indexOf(Math.max(...p));
    const probabilities = Object.fromEntries(classes.map((label, k) => [label, p[k]]));
    return { prediction: classes[best], probabilities };
  });
}
