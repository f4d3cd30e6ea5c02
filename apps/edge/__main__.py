"""``python -m apps.edge``: the browser runtime, the page as static files, a Space for the UI.

python -m apps.edge runtime       install onnxruntime-web once (course.py setup does it)
python -m apps.edge site DIR      the page, the runtime and the models, for a static host
python -m apps.edge space DIR     a Hugging Face Space (Docker SDK) that runs the UI
python -m apps.edge check         check the cloud configuration files, offline
"""

import argparse
import sys
from pathlib import Path

from apps.edge import cloud, runtime


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a problem is printed with its fix, and the exit code is 1."""
    parser = argparse.ArgumentParser(prog="python -m apps.edge", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("runtime", help=f"install onnxruntime-web {runtime.VERSION}")
    commands.add_parser("site", help="write the page as static files").add_argument("folder")
    commands.add_parser("space", help="write a Hugging Face Space for the UI").add_argument(
        "folder"
    )
    commands.add_parser("check", help="check docker/cloudrun.yaml and the Space's card")
    args = parser.parse_args(argv)
    try:
        if args.command == "runtime":
            fetched = runtime.ensure()
            print(
                f"onnxruntime-web {runtime.VERSION} {'installed' if fetched else 'is up to date'}"
            )
        elif args.command == "site":
            return write_site(Path(args.folder))
        elif args.command == "space":
            files = cloud.write_space(Path(args.folder))
            print(f"{len(files)} files written to {args.folder}: push them to your Space")
        else:
            problems = cloud.check_cloud_run() + cloud.check_space_card()
            print("\n".join(problems) or "no problems found")
            return 1 if problems else 0
    except (OSError, runtime.RuntimeMissing, runtime.RuntimeIntegrityError) as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return 1
    return 0


def write_site(folder: Path) -> int:
    """Verify every model, then write the site; a faulty model stops it, with the reason."""
    from apps.edge import site
    from apps.registry import ModelRegistry, RegistryError

    registry = ModelRegistry()
    try:
        files = site.site_files(registry, site.all_versions(registry))
    except RegistryError as error:
        print(f"site: a model failed its checks, nothing was written: {error}", file=sys.stderr)
        return 1
    total = site.write_site(folder, files)
    print(f"{len(files)} files ({total / 1e6:.1f} MB) written to {folder}: publish that folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
