"""Signed manifests: who vouches for a model version, checked before any hash is trusted.

A manifest pins the sha256 of every file, but it sits in the same folder as the files:
whoever can write a model file can write a new hash next to it (notebook 01 does it). A
signature moves the trust elsewhere. Training signs the manifest's exact bytes with a
private key that never sits next to the models, into ``manifest.sig``; the registry
checks that signature against the public keys it trusts before it reads a single hash.

Ed25519 (RFC 8032) from ``cryptography``: 32-byte keys, 64-byte signatures, nothing to
configure wrongly, and the same check is one ``openssl pkeyutl -verify -rawin`` away.

The public keys trusted are the ``*.pub`` files (PEM) in ``trusted_keys/`` at the
repository's root, or in the files and folders that ``$PENGUINS_TRUSTED_KEYS`` lists
(separated like ``PATH``); ``PENGUINS_TRUSTED_KEYS=none`` checks hashes only.
"""

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from apps.config import REPO_ROOT
from apps.registry.errors import SignatureError
from apps.registry.manifest import MANIFEST_FILE

SIGNATURE_FILE = "manifest.sig"
ALGORITHM = "ed25519"
TRUST_ENV = "PENGUINS_TRUSTED_KEYS"
TRUSTED_KEYS_DIR = REPO_ROOT / "trusted_keys"
"""The checkout's trust list: the course key (committed) and this machine's own key."""
NO_TRUST = "none"


def key_id(public_key) -> str:
    """A short name for a public key: ``ed25519:`` and 16 hex digits of its sha256."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{ALGORITHM}:{hashlib.sha256(raw).hexdigest()[:16]}"


def read_public_key(path: Path):
    """An Ed25519 public key from a PEM file; anything else is refused, by name."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise SignatureError(f"cannot read the trusted key {path.name}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"the trusted key {path.name} is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Signature:
    """What ``manifest.sig`` says: which key signed, and the signature itself."""

    key_id: str
    value: bytes

    @classmethod
    def parse(cls, data: bytes, label: str) -> "Signature":
        """Read a signature file; a malformed one is refused like a wrong signature."""
        try:
            document = json.loads(data)
            if document["algorithm"] != ALGORITHM:
                raise ValueError(f"algorithm {document['algorithm']!r}")
            return cls(
                str(document["key_id"]), base64.b64decode(document["signature"], validate=True)
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise SignatureError(
                f"{label}: {SIGNATURE_FILE} is not a signature ({error})"
            ) from None

    def to_bytes(self) -> bytes:
        """The file's text: small, sorted JSON, readable by people and any language."""
        document = {
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.value).decode(),
            "signs": "the exact bytes of manifest.json",
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def sign(manifest: bytes, private_key) -> Signature:
    """Sign a manifest's bytes (Ed25519 is deterministic: the same bytes, the same signature)."""
    return Signature(key_id(private_key.public_key()), private_key.sign(manifest))


def sign_version(folder: Path, private_key) -> str:
    """Sign the manifest of a version folder into ``manifest.sig``; return the key's id."""
    signature = sign((folder / MANIFEST_FILE).read_bytes(), private_key)
    with open(folder / SIGNATURE_FILE, "wb") as file:
        file.write(signature.to_bytes())
        file.flush()
        os.fsync(file.fileno())
    return signature.key_id


@dataclass(frozen=True)
class Trust:
    """The public keys whose signature makes a version trusted, by key id.

    ``required`` is False only when asked for (``PENGUINS_TRUSTED_KEYS=none``): then
    hashes are checked, signatures are not. Trusting nothing is not the same as that:
    with no key at all, every version is refused.
    """

    keys: dict = field(default_factory=dict)  # key id -> Ed25519 public key
    names: dict = field(default_factory=dict)  # key id -> its file's name, for messages
    source: str = "trusted_keys/"  # where the keys came from, as a message may show it
    required: bool = True

    @classmethod
    def off(cls) -> "Trust":
        return cls(source=f"{TRUST_ENV}={NO_TRUST}", required=False)

    @classmethod
    def from_paths(cls, paths: list[Path], source: str = "") -> "Trust":
        """The ``*.pub`` files of folders, and files named directly."""
        keys, names = {}, {}
        for path in paths:
            files = (
                sorted(path.glob("*.pub")) if path.is_dir() else [path] if path.is_file() else []
            )
            for file in files:
                key = read_public_key(file)
                keys[key_id(key)], names[key_id(key)] = key, file.name
        return cls(keys, names, source or os.pathsep.join(path.name for path in paths))

    @classmethod
    def from_environment(cls) -> "Trust":
        """``$PENGUINS_TRUSTED_KEYS`` (paths, or ``none``), else ``trusted_keys/``."""
        value = os.environ.get(TRUST_ENV, "").strip()
        if value.lower() == NO_TRUST:
            return cls.off()
        if value:
            return cls.from_paths([Path(p) for p in value.split(os.pathsep) if p], TRUST_ENV)
        return cls.from_paths([TRUSTED_KEYS_DIR], "trusted_keys/")

    def describe(self) -> str:
        """The trusted keys, as people read them: ``course.pub (ed25519:8c1e...)``."""
        return ", ".join(f"{self.names[k]} ({k})" for k in self.keys) or "none"

    def check(self, manifest: bytes, signature_path: Path, label: str) -> str | None:
        """The id of the trusted key that signed these manifest bytes (None when signatures
        are not required); otherwise a :class:`SignatureError` that says what to do."""
        if not self.required:
            return None
        if not self.keys:
            raise SignatureError(
                f"{label}: no trusted public key was found in {self.source}, so nothing can "
                "vouch for a model. Restore the course's key (`git checkout trusted_keys/`), "
                f"or point {TRUST_ENV} at the public keys you trust."
            )
        if not signature_path.is_file():
            raise SignatureError(
                f"{label} is not signed ({SIGNATURE_FILE} is missing): whoever could write "
                "its files could have written their hashes too, so they are not trusted. "
                "Restore it (`git checkout models/`) or train a new version (`python3 course.py "
                "train`), which signs it."
            )
        signature = Signature.parse(signature_path.read_bytes(), label)
        key = self.keys.get(signature.key_id)
        if key is None:
            raise SignatureError(
                f"{label} is signed by {signature.key_id}, a key that is not trusted here "
                f"(trusted: {self.describe()}). Add its public key to trusted_keys/ only if "
                "you know whose it is and trust what they sign."
            )
        from cryptography.exceptions import InvalidSignature

        try:
            key.verify(signature.value, manifest)
        except InvalidSignature:
            raise SignatureError(
                f"{label}: the signature of {self.names[signature.key_id]} does not match the "
                "manifest, which was changed after it was signed: its hashes are not trusted. "
                "Restore it (`git checkout models/`) or train a new version (`python3 course.py "
                "train`)."
            ) from None
        return signature.key_id


SIGNING_KEY_ENV = "PENGUINS_SIGNING_KEY"
SIGNING_KEY_FILE = REPO_ROOT / "secrets" / "model_signing_key.pem"
"""This machine's private key: git ignores ``secrets/``, and no image copies it."""


def new_key_pair(private_path: Path, public_path: Path):
    """Make an Ed25519 key pair: the private half readable by its owner only (PKCS#8 PEM),
    the public half for anyone (SubjectPublicKeyInfo PEM, what ``openssl`` reads)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(public)
    return key


def read_private_key(path: Path):
    """An Ed25519 private key from a PEM file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise SignatureError(f"cannot read the signing key {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"the signing key {path} is not an Ed25519 key")
    return key


def signing_key(announce=print):
    """The private key that signs the versions this machine trains.

    ``$PENGUINS_SIGNING_KEY`` names it. Otherwise it is ``secrets/model_signing_key.pem``,
    made on first use, with its public half added to ``trusted_keys/`` as
    ``local-<id>.pub``, so that this checkout trusts what it trains; git ignores both.
    ``announce`` is told what was made, once.
    """
    named = os.environ.get(SIGNING_KEY_ENV)
    if named:
        return read_private_key(Path(named))
    if SIGNING_KEY_FILE.is_file():
        return read_private_key(SIGNING_KEY_FILE)
    pending = TRUSTED_KEYS_DIR / "local-new.pub"
    key = new_key_pair(SIGNING_KEY_FILE, pending)
    public = TRUSTED_KEYS_DIR / f"local-{key_id(key.public_key()).partition(':')[2][:8]}.pub"
    pending.replace(public)
    announce(
        f"made a signing key for this machine: {SIGNING_KEY_FILE.relative_to(REPO_ROOT)} "
        "(private: keep it to yourself, git ignores it); its public half, "
        f"{public.relative_to(REPO_ROOT)}, is now trusted here (git ignores it too)"
    )
    return key
