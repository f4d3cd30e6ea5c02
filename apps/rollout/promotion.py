"""Promotion and rollback: the ``production`` alias moved only to a version that works.

Promoting checks a version the way every app will use it (its files verified, both
backends loaded, a warm-up prediction) before the alias moves, so a broken version is
refused here, before any server tries it; the API checks again, and keeps the old
version if anything fails. Rolling back returns to the version that was in production
before the current one was promoted: the alias history works as a stack, where each
promotion pushes a version and each rollback pops one.
"""

from apps.registry import ModelRegistry, RegistryError
from apps.registry.aliases import CANDIDATE, PRODUCTION, Aliases
from apps.registry.backends import BACKENDS


class PromotionError(RegistryError):
    """A promotion or rollback that must not happen; the message says why."""


def production_stack(aliases: Aliases) -> list[int]:
    """The production versions still "open", oldest first: the last one is in production,
    the one before it is where a rollback goes."""
    stack: list[int] = []
    for entry in aliases.history:
        if entry["alias"] != PRODUCTION:
            continue
        if entry["action"] == "rollback":
            stack = stack[:-1]
        elif entry["version"] is not None:
            stack.append(entry["version"])
    return stack


def check_servable(registry: ModelRegistry, name: str, version: int) -> None:
    """Load a version with every backend and predict once: raise if anything fails."""
    for backend in BACKENDS:
        registry.load(name, version, backend=backend).warm_up()


def promote(registry: ModelRegistry, name: str, version: int | None = None, reason: str = ""):
    """Point ``production`` at ``version`` (default: the ``candidate``), once it has passed
    :func:`check_servable`. The model's first promotion also records the version that was
    served until then (the latest), so that a rollback can return to it."""
    aliases = registry.aliases(name)
    version = aliases.get(CANDIDATE) if version is None else version
    if version is None:
        raise PromotionError(f"{name} has no candidate: name the version to promote")
    current = registry.production(name)
    if version == current:
        raise PromotionError(f"{name} v{version} is in production already")
    check_servable(registry, name, version)
    if aliases.get(PRODUCTION) is None:
        registry.set_alias(name, PRODUCTION, current, "pin", "served before the first promotion")
    changed = registry.set_alias(name, PRODUCTION, version, "promote", reason)
    if changed.get(CANDIDATE) == version:  # the candidate is a candidate no more
        changed = registry.set_alias(name, CANDIDATE, None, "promote", f"v{version} promoted")
    return changed


def rollback(registry: ModelRegistry, name: str, reason: str = "") -> Aliases:
    """Return ``production`` to the version it pointed at before the current promotion."""
    stack = production_stack(registry.aliases(name))
    if len(stack) < 2:
        raise PromotionError(f"{name} has no earlier production version to roll back to")
    check_servable(registry, name, stack[-2])
    return registry.set_alias(name, PRODUCTION, stack[-2], "rollback", reason)
