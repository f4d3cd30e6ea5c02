"""Make a local certificate authority and a server certificate for the proxy, offline.

    python docker/make_certs.py secrets/tls              # ca.pem, ca.key, server.pem, server.key
    python docker/make_certs.py secrets/tls --name api.example.internal

A browser or a client trusts the server only if it trusts who signed its certificate.
Without a domain, no public authority will sign one, so this makes a small authority of
your own (``ca.pem`` and its key ``ca.key``) and signs a certificate for ``localhost``,
``127.0.0.1``, ``::1`` and ``penguins.localhost`` (plus any ``--name``). Give clients
``ca.pem`` (``curl --cacert``, ``requests`` ``verify=``, or your system's or browser's
trust store); keep ``ca.key`` secret: whoever holds it can sign a certificate for any
name that your trust store would then accept. Keys are written readable by their owner
only; ``--owner UID`` (as root) hands them to the containers' user, 10001.
"""

import argparse
import datetime
import os
import sys
from pathlib import Path

import trustme

NAMES = ("localhost", "127.0.0.1", "::1", "penguins.localhost")
FILES = ("ca.pem", "ca.key", "server.pem", "server.key")
VALID_DAYS = 397
"""The server certificate's life: browsers refuse longer ones from public authorities."""


def make(folder: Path, names: list[str], owner: int | None = None) -> dict[str, Path]:
    """Write the four files into ``folder``; refuse to overwrite an authority."""
    paths = {name: folder / name for name in FILES}
    if paths["ca.key"].exists():
        raise FileExistsError(
            f"{paths['ca.key']} exists: this folder has an authority already (delete the "
            "folder to start again, and remove the old one from your trust stores)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="Penguins course local CA")
    now = datetime.datetime.now(datetime.UTC)
    server = authority.issue_cert(
        *dict.fromkeys([*NAMES, *names]),
        common_name="penguins.localhost",
        not_before=now - datetime.timedelta(hours=1),
        not_after=now + datetime.timedelta(days=VALID_DAYS),
    )
    authority.cert_pem.write_to_path(str(paths["ca.pem"]))
    paths["server.pem"].write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    for key, blob in (
        ("ca.key", authority.private_key_pem),
        ("server.key", server.private_key_pem),
    ):
        descriptor = os.open(paths[key], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(blob.bytes())
    if owner is not None:
        os.chown(paths["server.key"], owner, owner)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write the files, e.g. secrets/tls")
    parser.add_argument("--name", action="append", default=[], help="another DNS name or IP")
    parser.add_argument("--owner", type=int, help="user id to own server.key (needs root)")
    args = parser.parse_args(argv)
    try:
        paths = make(args.folder, args.name, args.owner)
    except (FileExistsError, PermissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name:10}  {path.as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
