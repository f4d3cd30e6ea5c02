"""The report as one self-contained HTML page: tables and plots, no outside files.

The plots are PNG images embedded in the page (``data:`` URLs), so the file can be
mailed, archived or opened offline. Matplotlib's ``Figure`` is used without ``pyplot``:
no GUI backend, safe in a server or a scheduler.
"""

import base64
import html
import io
import itertools
import math

from matplotlib.figure import Figure


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{encoded}">'


def _labels(report: dict) -> list[str]:
    return [w["start"][:10] for w in report["windows"]]


def drift_figure(report: dict) -> Figure:
    """PSI of every column over the windows; a red dot where a column drifted."""
    figure = Figure(figsize=(9, 3.6))
    axes = figure.subplots()
    labels, windows = _labels(report), report["windows"]
    columns = sorted({t["column"] for w in windows for t in w["tests"] if t["test"] != "missing"})
    for column in columns:
        values, flagged = [], []
        for i, w in enumerate(windows):
            test = next(
                (t for t in w["tests"] if t["column"] == column and t["test"] != "missing"), None
            )
            values.append(test["effect"] if test else math.nan)
            if test and any(t["drift"] for t in w["tests"] if t["column"] == column):
                flagged.append((i, test["effect"]))
        axes.plot(range(len(windows)), values, marker="o", markersize=3, label=column)
        if flagged:
            at, effects = zip(*flagged, strict=True)
            axes.scatter(at, effects, s=70, facecolors="none", edgecolors="red")
    axes.axhline(report["psi_threshold"], color="grey", linestyle="--", linewidth=1)
    axes.set_xticks(range(len(windows)), labels, rotation=45, ha="right", fontsize=8)
    axes.set(ylabel="PSI (shift size)", title="Drift over time (red ring: drift detected)")
    if columns:
        axes.legend(fontsize=7, ncol=2, loc="upper left")
    return figure


def performance_figure(report: dict) -> Figure:
    """Accuracy (or MAE) per window with its 95% interval, and the labelled rows behind it."""
    figure = Figure(figsize=(9, 3.2))
    axes = figure.subplots()
    windows = report["windows"]
    key = "accuracy" if report["task"] == "classification" else "mae"
    x = range(len(windows))
    figures = [w["performance"] for w in windows]
    value = [math.nan if f[key] is None else f[key] for f in figures]
    low = [math.nan if f.get(f"{key}_low") is None else f[f"{key}_low"] for f in figures]
    high = [math.nan if f.get(f"{key}_high") is None else f[f"{key}_high"] for f in figures]
    counts = axes.twinx()
    counts.bar(x, [f["labelled"] for f in figures], color="lightgrey", alpha=0.6)
    counts.set_ylabel("labelled rows", color="grey")
    axes.set_zorder(counts.get_zorder() + 1)
    axes.patch.set_visible(False)
    axes.fill_between(x, low, high, alpha=0.25, color="tab:blue", label="95% interval")
    axes.plot(x, value, marker="o", color="tab:blue", label=key)
    axes.set_xticks(list(x), _labels(report), rotation=45, ha="right", fontsize=8)
    axes.set(ylabel=key, title=f"Live {key} from feedback (bars: labelled rows)")
    axes.legend(fontsize=8, loc="lower left")
    return figure


def distribution_figure(report: dict) -> Figure:
    """Reference (grey) and latest tested window (blue) of every column and the predictions."""
    items = list(report["distributions"].items())
    columns = 4
    rows = math.ceil(len(items) / columns)
    figure = Figure(figsize=(12, 2.6 * rows))
    for index, (name, entry) in enumerate(items):
        axes = figure.add_subplot(rows, columns, index + 1)
        if entry["type"] == "category":
            x = range(len(entry["categories"]))
            axes.bar([i - 0.2 for i in x], entry["reference"], 0.4, color="grey", label="reference")
            axes.bar([i + 0.2 for i in x], entry["current"], 0.4, color="tab:blue", label="latest")
            axes.set_xticks(list(x), entry["categories"], fontsize=7)
        else:
            edges = entry["edges"]
            centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
            width = edges[1] - edges[0]
            axes.bar(centres, entry["reference"], width, color="grey", alpha=0.6, label="reference")
            axes.bar(centres, entry["current"], width, color="tab:blue", alpha=0.5, label="latest")
            axes.tick_params(labelsize=7)
        axes.set_title(name, fontsize=9)
    figure.axes[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure_text(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;
margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}th{background:#eee}
.drift{color:#b00;font-weight:bold}.ok{color:#070;font-weight:bold}"""


def render_html(report: dict) -> str:
    """The whole report as one HTML page."""
    key = "accuracy" if report["task"] == "classification" else "mae"
    windows = [
        [
            w["start"][:16],
            w["rows"],
            ("DRIFT: " + ", ".join(w["drifted"])) if w["drift"] else ("no" if w["tested"] else "-"),
            w["performance"]["labelled"],
            _figure_text(w["performance"][key]),
            f"{_figure_text(w['performance'][key + '_low'])} - "
            f"{_figure_text(w['performance'][key + '_high'])}",
        ]
        for w in report["windows"]
    ]
    latest = report["latest_window"]
    tests = [] if latest is None else report["windows"][latest]["tests"]
    test_rows = [
        [t["column"], t["test"], t["statistic"], t["p_value"], t["adjusted_p"], t["effect"],
         "DRIFT" if t["drift"] else ""]
        for t in tests
    ]  # fmt: skip
    verdict = (
        '<span class="drift">drift</span>'
        if report["drift"]
        else '<span class="ok">no drift</span>'
    )
    title = f"{report['model']} v{report['version']}: monitoring report"
    days = report["window_seconds"] / 86400
    source = html.escape(report["reference"]["source"])
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>From {report["since"]} to {report["until"]}, in windows of {days:g} days:
{report["rows"]} logged predictions, {report["labelled"]} with feedback.
Latest tested window: {verdict}. Reference: {source}. A column drifts when its test is
significant after Holm's correction (alpha {report["alpha"]}) and its PSI is at least
{report["psi_threshold"]} (or its share of missing values moved by {report["missing_change"]});
windows with fewer than {report["min_rows"]} rows are not tested.</p>
<h2>Windows</h2>{_table(["start", "rows", "drift", "labelled", key, "95% interval"], windows)}
<h2>Drift over time</h2>{_png(drift_figure(report))}
<h2>Live performance</h2>{_png(performance_figure(report))}
<h2>Latest tested window: every test</h2>
{_table(["column", "test", "statistic", "p-value", "Holm p-value", "effect", ""], test_rows)}
<h2>Distributions: reference and latest tested window</h2>{_png(distribution_figure(report))}
</body></html>
"""
