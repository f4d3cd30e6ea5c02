"""Contributor tool: draw the course's map, one picture per notebook, "you are here" marked.

    python tools/course_map.py        # writes notebooks/images/course-map-NN.svg

Each notebook opens with its picture: the parts of the system the course builds, in the
order data flows through them, with the part that this notebook builds highlighted. Plain
SVG, so it shows in Jupyter, on GitHub and offline, and a diff shows what changed.
"""

from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "notebooks" / "images"
WIDTH, HEIGHT = 860, 330

# number: (title, what it builds, x, y, width)
BOXES = {
    "01": ("Serialization", "models/, apps/registry", 20, 130, 150),
    "02": ("REST API", "apps/api (Flask)", 230, 130, 150),
    "03": ("API clients", "apps/client, cURL, Postman", 440, 130, 170),
    "04": ("Streamlit UI", "apps/ui, apps/stack.py", 670, 130, 170),
    "05": ("Docker", "docker/: images, compose", 230, 20, 170),
    "06": ("Batch scoring", "apps/batch, Dask", 20, 240, 150),
    "07": ("Monitoring", "apps/monitoring", 230, 240, 150),
    "08": ("Retraining, rollout", "aliases, hot swap", 440, 240, 170),
    "09": ("Secure hosting, scaling", "TLS proxy, replicas, k8s", 440, 20, 215),
    "10": ("Edge and cloud", "apps/edge, Cloud Run", 670, 20, 170),
}
BOX_HEIGHT = 62
ARROWS = [("01", "02"), ("02", "03"), ("03", "04"), ("01", "06"), ("02", "07"), ("07", "08"),
          ("08", "01"), ("05", "02"), ("09", "05"), ("10", "01")]  # fmt: skip


def centre(number: str) -> tuple[float, float]:
    _, _, x, y, width = BOXES[number]
    return x + width / 2, y + BOX_HEIGHT / 2


def edge_point(number: str, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's centre towards a point leaves the box."""
    width = BOXES[number][4]
    cx, cy = centre(number)
    dx, dy = towards[0] - cx, towards[1] - cy
    scale = min(
        (width / 2) / abs(dx) if dx else float("inf"),
        (BOX_HEIGHT / 2) / abs(dy) if dy else float("inf"),
    )
    return cx + dx * scale, cy + dy * scale


def svg(current: str) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for start, end in ARROWS:
        x1, y1 = edge_point(start, centre(end))
        x2, y2 = edge_point(end, centre(start))
        parts.append(
            f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#999" '
            'stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
    for number, (title, builds, x, y, width) in BOXES.items():
        here = number == current
        fill, stroke, text = (
            ("#1f6feb", "#0b3d91", "white") if here else ("#f3f4f6", "#9ca3af", "#111")
        )
        parts += [
            f'<rect x="{x}" y="{y}" width="{width}" height="{BOX_HEIGHT}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{3 if here else 1}"/>',
            f'<text x="{x + 10}" y="{y + 24}" font-size="15" font-weight="bold" fill="{text}">'
            f"{number} {escape(title)}</text>",
            f'<text x="{x + 10}" y="{y + 46}" font-size="12" fill="{text}">{escape(builds)}</text>',
        ]
        if here:
            parts.append(
                f'<text x="{x + width - 8}" y="{y - 6 if y > 20 else y + BOX_HEIGHT + 16}" '
                'font-size="13" font-weight="bold" fill="#0b3d91" text-anchor="end">'
                "you are here</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for number in BOXES:
        (OUT / f"course-map-{number}.svg").write_text(svg(number), encoding="utf-8")
    print(f"wrote {len(BOXES)} pictures to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
