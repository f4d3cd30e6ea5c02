"""onnxruntime-web, the in-browser runtime: three pinned files, downloaded once from npm.

The page needs ONNX Runtime compiled to WebAssembly (about 14 MB). Rather than commit
that binary, or fetch it from a CDN every time the page opens, the set-up
(``python course.py setup``) downloads the exact npm package once, checks it against the
registry's ``integrity`` pinned here (the same sha512 a ``package-lock.json`` records),
and keeps only the files the page loads. No Node.js or npm is needed, and after that the
page works offline. Standard library only, so it runs on any Python.
"""

import base64
import functools
import hashlib
import io
import os
import shutil
import ssl
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from apps.config import REPO_ROOT

VERSION = "1.30.0"
TARBALL_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
INTEGRITY = (
    "sha512-"
    "q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
)
"""``dist.integrity`` of onnxruntime-web 1.30.0 in the npm registry: the tarball's sha512."""

SHA256SUMS = """\
219e6a1fc8a9938268d18efca3c91d310bd2f4a59bbd13744df5b2b7fc6cee3b  ort.wasm.min.mjs
e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b  ort-wasm-simd-threaded.mjs
3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2  ort-wasm-simd-threaded.wasm
"""
"""The files the page loads, from the package's ``dist/`` folder, as ``sha256sum`` lists
them: the API of the WebAssembly build, its loader, and the WebAssembly binary."""
FILES = {name: digest for digest, name in map(str.split, SHA256SUMS.splitlines())}

LICENSE_FILE = "LICENSE.txt"
RUNTIME_DIR = REPO_ROOT / "vendor" / f"onnxruntime-web-{VERSION}"
"""Where the files live: git ignores ``vendor/``."""

LICENSE_TEXT = f"""\
ONNX Runtime Web {VERSION} (npm package onnxruntime-web), used unmodified.
The package declares the MIT License; the npm tarball carries no licence file, so the
text of ONNX Runtime's LICENSE is reproduced here. Notices of the third-party code
compiled into the WebAssembly binary:
https://github.com/microsoft/onnxruntime/blob/v{VERSION}/ThirdPartyNotices.txt

MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class RuntimeMissing(Exception):
    """The runtime's files are absent or damaged; the message says how to install them."""


class RuntimeIntegrityError(Exception):
    """A download differs from its pin: it is refused, and nothing is unpacked."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks (the WebAssembly file is 14 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def _sha256_of_version(path: Path, size: int, mtime_ns: int) -> str:
    """``sha256_file``, computed again only when the file's size or time stamp changes."""
    return sha256_file(path)


def installed_files(folder: Path = RUNTIME_DIR) -> dict[str, Path]:
    """The runtime's files (name -> path), each checked against its pinned sha256.

    Whatever serves the page calls this first, so a missing, partial or altered runtime
    is reported with the fix instead of failing inside the browser. Each API the tests
    build calls it, so a file's hash is remembered until the file changes.
    """
    for name, pinned in {**FILES, LICENSE_FILE: None}.items():
        path = folder / name
        stat = path.stat() if path.is_file() else None
        if stat is None:
            problem = "is missing"
        elif pinned and _sha256_of_version(path, stat.st_size, stat.st_mtime_ns) != pinned:
            problem = "differs from its pinned sha256"
        else:
            continue
        raise RuntimeMissing(
            f"onnxruntime-web {VERSION} is not installed correctly: {name} {problem}. "
            "Install it with `python3 course.py setup` (or `python -m apps.edge runtime`)."
        )
    return {name: folder / name for name in [*FILES, LICENSE_FILE]}


def integrity_of(data: bytes) -> str:
    """npm's ``integrity`` string for some bytes: ``sha512-`` and the base64 digest."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(url: str) -> bytes:
    """The bytes at ``url``, over TLS checked with the system's certificate authorities.

    Behind a proxy that re-signs TLS, the bundle that pip is told to trust (``PIP_CERT``,
    see the README) is used too. Python from python.org on macOS may come without any
    CA certificates; then those of the ``certifi`` package are tried.
    """
    cafile = os.environ.get("PIP_CERT") or None
    try:
        return _read(url, ssl.create_default_context(cafile=cafile))
    except urllib.error.URLError as error:
        if not isinstance(error.reason, ssl.SSLCertVerificationError) or cafile:
            raise
        try:
            import certifi
        except ImportError:
            raise error from None
        return _read(url, ssl.create_default_context(cafile=certifi.where()))


def _read(url: str, context: ssl.SSLContext) -> bytes:
    # only ever the fixed https:// TARBALL_URL, checked against its pinned sha512 after
    with urllib.request.urlopen(url, timeout=120, context=context) as response:  # noqa: S310
        return response.read()


def install(
    target: Path = RUNTIME_DIR,
    url: str = TARBALL_URL,
    integrity: str = INTEGRITY,
    files: dict[str, str] = FILES,
) -> Path:
    """Download the package, check it against ``integrity``, unpack ``files`` into ``target``.

    Only the listed files are read from the archive, by name, so no other path in it can
    be written anywhere. They are unpacked beside ``target`` and moved into place at the
    end: the folder is complete or absent, never half-written.
    """
    data = download(url)
    actual = integrity_of(data)
    if actual != integrity:
        raise RuntimeIntegrityError(
            f"{url} is not the pinned package: its integrity is {actual[:20]}..., the pin is "
            f"{integrity[:20]}...; refusing to unpack it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the files are public anyway
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for name, pinned in files.items():
                content = _member(archive, f"package/dist/{name}")
                if hashlib.sha256(content).hexdigest() != pinned:
                    raise RuntimeIntegrityError(f"{name} in {url} differs from its pinned sha256")
                (staging / name).write_bytes(content)
        (staging / LICENSE_FILE).write_text(LICENSE_TEXT, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    """The bytes of one regular file of the archive; an error if it is absent or not a file."""
    try:
        member = archive.getmember(name)
    except KeyError:
        raise RuntimeIntegrityError(f"the package has no file {name}") from None
    file = archive.extractfile(member) if member.isfile() else None
    if file is None:
        raise RuntimeIntegrityError(f"{name} in the package is not a regular file")
    return file.read()


def ensure(target: Path = RUNTIME_DIR) -> bool:
    """Install the runtime unless it is there and intact; True if it was downloaded."""
    try:
        installed_files(target)
    except RuntimeMissing:
        install(target)
        return True
    return False
