"""``python -m apps.registry``: sign model versions, or make a signing key pair.

Training signs what it saves (:mod:`apps.training`); this command is for the rest: a
version made by hand, or models re-signed with another key.

    python -m apps.registry sign models/species-classifier/2            # this machine's key
    python -m apps.registry sign models/*/1 --key secrets/course_signing_key.pem
    python -m apps.registry new-key secrets/team_key.pem trusted_keys/team.pub
"""

import argparse
from pathlib import Path

from apps.registry.errors import SignatureError
from apps.registry.manifest import MANIFEST_FILE
from apps.registry.signing import key_id, new_key_pair, read_private_key, sign_version, signing_key


def main(argv: list[str] | None = None) -> int:
    """``sign FOLDER...``: sign versions you made; ``new-key PRIVATE PUBLIC``: a key pair."""
    parser = argparse.ArgumentParser(
        prog="python -m apps.registry", description="Sign model versions."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    signer = commands.add_parser("sign", help="sign the manifest of each version folder")
    signer.add_argument("folders", nargs="+", type=Path, help="e.g. models/species-classifier/2")
    signer.add_argument("--key", type=Path, help="private key (default: this machine's)")
    maker = commands.add_parser("new-key", help="make a key pair (private 0600, public PEM)")
    maker.add_argument("private", type=Path)
    maker.add_argument("public", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "new-key":
            key = new_key_pair(args.private, args.public)
            print(f"made {key_id(key.public_key())}: {args.private} (private), {args.public}")
            return 0
        key = read_private_key(args.key) if args.key else signing_key()
        for folder in args.folders:
            if not (folder / MANIFEST_FILE).is_file():
                raise SignatureError(f"{folder} has no {MANIFEST_FILE}: not a version folder")
            print(f"signed {folder} with {sign_version(folder, key)}")
    except (SignatureError, FileExistsError) as error:
        print(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
