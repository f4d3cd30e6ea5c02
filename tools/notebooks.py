"""Contributor tool: keep the notebooks and the files they export in step.

The notebooks are the source of ``apps/``, ``docker/`` and ``.dockerignore``: each file is
written by one ``%%writefile`` cell, or by a ``%%writefile`` cell followed by
``%%writefile -a`` cells that append to it. Editing a module in a notebook cell is awkward
for larger changes, so this tool also works the other way round, like nbdev's
``nbdev_update``:

    python tools/notebooks.py sync apps/api/config.py   # copy a file back into its cells
    python tools/notebooks.py sync --all                # every exported file
    python tools/notebooks.py run notebooks/02_rest_api.ipynb   # re-run, save outputs

A module spread over several cells is split again at the first line of each appending
cell, which must still appear (once) in the edited file; the tool says which one is
missing otherwise. After ``sync``, re-run the notebook so that its outputs match.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WRITEFILE = re.compile(r"^%%writefile(?P<append>\s+(?:-a|--append))?\s+(?P<target>\S+)\s*$")


def exporting_cells(notebook_paths: list[Path]) -> dict[str, list[tuple[Path, int]]]:
    """Exported path (relative to the root) -> the cells that write it, in order."""
    found: dict[str, list[tuple[Path, int]]] = {}
    for path in notebook_paths:
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.startswith("%%writefile"):
                continue
            match = WRITEFILE.match(cell.source.partition("\n")[0])
            if match:
                target = match["target"].removeprefix("../")
                found.setdefault(target, []).append((path, index))
    return found


def split_at_anchors(text: str, bodies: list[str]) -> list[str]:
    """Split ``text`` into as many parts as ``bodies``, each part after the first starting
    at the line that starts the body of the same position."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for body in bodies[1:]:
        anchor = next((line for line in body.splitlines() if line.strip()), "")
        hits = [i for i, line in enumerate(lines) if line.rstrip("\n") == anchor]
        if not hits and "(" in anchor:  # a changed signature: match the name, ``def f(``
            stem = anchor[: anchor.index("(") + 1]
            hits = [i for i, line in enumerate(lines) if line.startswith(stem)]
        hits = [i for i in hits if i > starts[-1]]
        if not hits:
            raise SystemExit(f"cannot find the start of an appending cell: {anchor!r}")
        starts.append(hits[0])
    starts.append(len(lines))
    return ["".join(lines[a:b]) for a, b in itertools.pairwise(starts)]


def sync(targets: list[str]) -> None:
    """Write each file's current text back into the notebook cells that export it."""
    cells = exporting_cells(sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
    opened: dict[Path, nbformat.NotebookNode] = {}
    for target in targets:
        writers = cells.get(target)
        if not writers:
            raise SystemExit(f"no notebook cell writes {target}")
        notebooks = {path for path, _ in writers}
        if len(notebooks) != 1:
            raise SystemExit(f"{target} is written from several notebooks: {sorted(notebooks)}")
        (path,) = notebooks
        nb = opened.setdefault(path, nbformat.read(path, as_version=4))
        sources = [nb.cells[index].source for _, index in writers]
        heads = [source.partition("\n")[0] for source in sources]
        bodies = [source.partition("\n")[2] for source in sources]
        text = (ROOT / target).read_text(encoding="utf-8")
        parts = split_at_anchors(text, bodies)
        for (_, index), head, body, part in zip(writers, heads, bodies, parts, strict=True):
            # IPython adds a final newline to a cell that lacks one, and only then: keep
            # the cell's own style where both forms write the same file.
            single = part.endswith("\n") and not part.endswith("\n\n")
            if single and not body.endswith("\n"):
                part = part[:-1]
            nb.cells[index].source = head + "\n" + part
    for path, nb in opened.items():
        nbformat.write(nb, path)
        print(f"updated {path.relative_to(ROOT)}")


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive writes to the same stream, as a notebook front end shows them."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def run(paths: list[Path]) -> None:
    """Execute notebooks in place, in ``notebooks/``, with this interpreter's kernel."""
    from nbclient import NotebookClient

    sys.path.insert(0, str(ROOT / "tests"))
    from test_notebook_exports import current_environment_kernel_manager

    for path in paths:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            kernel_name="python3",
            kernel_manager_class=current_environment_kernel_manager(),
            timeout=600,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent.resolve())}},
        ).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # no timestamps in committed notebooks
            if cell.cell_type == "code":
                cell.outputs = coalesce_streams(cell.outputs)
        nbformat.write(nb, path)
        print(f"ran {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="copy exported files back into their cells")
    sync_parser.add_argument("files", nargs="*")
    sync_parser.add_argument("--all", action="store_true", help="every exported file")
    run_parser = commands.add_parser("run", help="execute notebooks in place")
    run_parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "sync":
        files = [Path(f).resolve().relative_to(ROOT).as_posix() for f in args.files]
        if args.all:
            files = sorted(exporting_cells(sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))))
        sync(files)
    else:
        run(args.notebooks)


if __name__ == "__main__":
    main()
