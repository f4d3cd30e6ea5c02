"""Aliases: names such as ``production`` that point at one version of a model.

Callers ask for "the production model", not for version 7, so promoting a version or
rolling back changes one small file, ``models/<name>/aliases.json``, and nothing else.
The file also keeps the history of every change: when, from which version to which,
and why. It is replaced atomically (written beside it, flushed to disk, then renamed
over it), so a reader, such as an API worker watching it, sees the old file or the new
one, never half of one; the registry holds a lock while it writes, so that two writers
never lose each other's change.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from apps.registry.errors import RegistryError
from apps.registry.publishing import replace_file

ALIASES_FILE = "aliases.json"
PRODUCTION = "production"
"""The version that serves requests that name no version."""
CANDIDATE = "candidate"
"""The newest version that passed the retraining gate, waiting for promotion."""


@dataclass(frozen=True)
class Aliases:
    """One model's aliases (alias -> version) and every change made to them, oldest first."""

    versions: dict[str, int] = field(default_factory=dict)
    history: tuple[dict, ...] = ()

    def get(self, alias: str) -> int | None:
        """The version an alias points at, or None if it is not set."""
        return self.versions.get(alias)

    def changed(self, alias: str, version: int | None, action: str, reason: str) -> "Aliases":
        """A copy with ``alias`` pointing at ``version`` (None removes it), the change logged."""
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "alias": alias,
            "version": version,
            "previous": self.get(alias),
            "action": action,
            "reason": reason,
        }
        versions = dict(self.versions)
        if version is None:
            versions.pop(alias, None)
        else:
            versions[alias] = version
        return Aliases(versions, (*self.history, entry))


def read_aliases(model_dir: Path) -> Aliases:
    """The aliases kept in a model's folder; none if it has no aliases file yet."""
    path = model_dir / ALIASES_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        versions = {str(k): int(v) for k, v in document["aliases"].items()}
        history = tuple(dict(entry) for entry in document["history"])
    except FileNotFoundError:
        return Aliases()
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise RegistryError(
            f"{model_dir.name}/{ALIASES_FILE} is not a valid aliases file ({error!r}): "
            "restore it from a backup, or delete it to serve the latest version"
        ) from None
    return Aliases(versions, history)


def write_aliases(model_dir: Path, aliases: Aliases) -> None:
    """Replace the aliases file atomically; call it holding :func:`locked` on the folder."""
    document = {"aliases": aliases.versions, "history": list(aliases.history)}
    replace_file(model_dir / ALIASES_FILE, json.dumps(document, indent=1, sort_keys=True) + "\n")
