"""The images install ``hashes/requirements-*.txt`` with ``pip --require-hashes``: those
files must list exactly the pins of the images' requirements files, and real hashes.

Offline: the hashes are compared with the files of a local package index when this
machine has one (``file://`` index URLs in pip's configuration, as on the CI machines),
whose links carry each file's SHA-256.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import hash_pins  # noqa: E402

LINK = re.compile(r'href="[^"#]*/(?P<file>[^/"#]+)#sha256=(?P<sha>[0-9a-f]{64})"')


def test_every_hash_file_lists_exactly_the_pins_of_its_image():
    assert hash_pins.check() == []


def test_a_changed_pin_without_new_hashes_is_caught(tmp_path):
    for name in (*hash_pins.IMAGES, *(f"hashes/{n}" for n in hash_pins.IMAGES)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    source = tmp_path / "requirements-serve-onnx.txt"
    source.write_text(source.read_text().replace("Flask==3.1.3", "Flask==3.1.2"))
    assert hash_pins.check(tmp_path) == [
        "hashes/requirements-serve-onnx.txt does not list the pins of requirements-serve-onnx.txt"
    ]


def local_indexes() -> list[Path]:
    """Folders of the ``file://`` package indexes pip is configured with, if any."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    urls = re.findall(r"file://\S+?(?=['\s]|$)", listed)
    return [Path(urlparse(url).path) for url in urls if Path(urlparse(url).path).is_dir()]


def test_hashes_match_the_files_of_a_local_index():
    indexes = local_indexes()
    if not indexes:
        pytest.skip("no local package index here to compare with (CI machines have one)")
    compared = 0
    for source in hash_pins.IMAGES:
        for key, (version, hashes) in hash_pins.hashed_pins(ROOT / "hashes" / source).items():
            for index in indexes:
                page = index / key / "index.html"
                if not page.exists():
                    continue
                for link in LINK.finditer(page.read_text()):
                    found = hash_pins.version_of(link["file"])
                    if found is not None and str(found) == version:
                        assert link["sha"] in hashes, (source, link["file"])
                        compared += 1
    assert compared >= 20, compared  # the comparison really happened
