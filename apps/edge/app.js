// The page: offer the models, build each one's form from its manifest, predict on this device.
import { IntegrityError, loadModel, predict } from "./model.js";

const $ = (id) => document.getElementById(id);
const models = new Map(); // "name vN" -> {model} once verified and loaded, or {error}
let current = null; // the model whose form is on show

function say(text) {
  $("status").textContent = text;
}

function fail(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// The manifest's rules become the form's own constraints (required, minimum, maximum, the
// categories to pick from), so the browser refuses bad input with its usual messages.
function inputFor(column) {
  if (column.type === "category") {
    const select = document.createElement("select");
    if (column.nullable) select.add(new Option("(unknown)", ""));
    for (const category of column.categories) select.add(new Option(category, category));
    return select;
  }
  const input = document.createElement("input");
  Object.assign(input, { type: "number", step: "any", required: !column.nullable });
  if (column.minimum != null) input.min = column.minimum;
  if (column.maximum != null) input.max = column.maximum;
  if (column.nullable) input.placeholder = "unknown";
  return input;
}

function buildForm(manifest) {
  const labels = manifest.input_schema.columns.map((column) => {
    const label = document.createElement("label");
    const input = inputFor(column);
    input.name = column.name;
    label.append(column.description + (column.unit ? ` (${column.unit})` : ""), input);
    return label;
  });
  $("fields").replaceChildren(...labels);
}

// A record as the API takes it: null for a field left empty, numbers as numbers.
function readForm(manifest) {
  const elements = $("form").elements;
  const record = {};
  for (const column of manifest.input_schema.columns) {
    const text = elements[column.name].value;
    record[column.name] = text === "" ? null : column.type === "number" ? Number(text) : text;
  }
  return record;
}

function cell(content) {
  const td = document.createElement("td");
  td.append(content);
  return td;
}

function show(manifest, result, milliseconds) {
  const { target, unit } = manifest.outputs;
  const rows = Object.entries(result.probabilities ?? {}).map(([label, p]) => {
    const meter = Object.assign(document.createElement("meter"), { min: 0, max: 1, value: p });
    const row = document.createElement("tr");
    row.append(cell(label), cell(meter), cell(`${(100 * p).toFixed(2)} %`));
    return row;
  });
  const value = result.probabilities
    ? result.prediction
    : `${result.prediction.toFixed(0)}${unit ? ` ${unit}` : ""}`;
  $("answer").textContent = `Predicted ${target}: ${value}`;
  $("probabilities").replaceChildren(...rows);
  $("timing").textContent = `Computed in this browser in ${milliseconds.toFixed(2)} ms.`;
  $("result").hidden = false;
}

function choose(label) {
  const { model, error } = models.get(label);
  current = model ?? null;
  $("result").hidden = true;
  $("form").hidden = !model;
  if (model) buildForm(model.manifest);
  fail(!error ? "" : error instanceof IntegrityError ? `Refused: ${error.message}` : error.message);
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault(); // the browser has checked the constraints; stay on the page
  const started = performance.now();
  try {
    const [result] = await predict(current, [readForm(current.manifest)]);
    show(current.manifest, result, performance.now() - started);
  } catch (error) {
    fail(`The prediction failed: ${error.message}`);
  }
});

/**
 * What the page loaded, file by file, from the browser's own record of its requests: each
 * file's size, and the bytes that crossed the network for it (a few hundred for a file
 * revalidated from the cache, with a 304).
 */
export function downloads() {
  const entries = performance.getEntriesByType("navigation").concat(
    performance.getEntriesByType("resource"),
  );
  return entries.map((entry) => ({
    path: new URL(entry.name).pathname,
    bytes: entry.encodedBodySize,
    transferred: entry.transferSize,
  }));
}

/** Predictions of the model on show for many records: what the form does, in bulk. */
export async function predictRecords(records) {
  if (!current) throw new Error("no model is ready");
  return predict(current, records);
}

// Every model is downloaded and verified at the start, so that switching models later
// needs no network: after this, the page works offline.
async function start() {
  const response = await fetch("models.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`models.json answered HTTP ${response.status}`);
  const entries = (await response.json()).models;
  if (!entries.length) throw new Error("the site offers no model");
  const loaded = await Promise.all(
    entries.map((entry) =>
      loadModel(entry.path).then(
        (model) => ({ model }),
        (error) => ({ error }),
      ),
    ),
  );
  entries.forEach((entry, i) => models.set(`${entry.name} v${entry.version}`, loaded[i]));
  for (const label of models.keys()) $("model").add(new Option(label, label));
  $("model").addEventListener("change", () => choose($("model").value));
  $("model").disabled = false;
  const ready = loaded.filter((entry) => entry.model).length;
  const megabytes = downloads().reduce((sum, file) => sum + file.transferred, 0) / 1e6;
  const seconds = performance.mark("models-ready").startTime / 1000; // since the page opened
  say(
    `${ready} of ${entries.length} models verified and ready after ${seconds.toFixed(1)} s ` +
      `(${megabytes.toFixed(1)} MB downloaded). Predictions need no network from now on.`,
  );
  choose($("model").value);
}

start().catch((error) => {
  say("");
  fail(`The page could not start: ${error.message}`);
});
