"""Errors the registry raises: each says what went wrong and what to do about it.

Every app maps these to its own way of reporting (an HTTP status, a message in the
UI, a line in a batch report), so they carry plain messages and structured details.
"""


class RegistryError(Exception):
    """Base class: anything that stops a model from being found, trusted or used."""


class ModelNotFoundError(RegistryError, LookupError):
    """The model name or version is not in the registry."""


class IntegrityError(RegistryError):
    """A model file is unknown to its manifest, or its bytes do not match the pinned hash."""


class SignatureError(IntegrityError):
    """A manifest that no trusted key signed: missing, wrong or unknown signature."""


class UntrustedTypesError(RegistryError):
    """A skops file asks for Python types outside the explicit trusted list."""


class VersionMismatchError(RegistryError):
    """The installed library versions differ from those the model was saved with."""


class VersionMismatchWarning(UserWarning):
    """Issued instead of :class:`VersionMismatchError` when the caller accepts the risk."""


class ValidationError(RegistryError, ValueError):
    """Input records do not match the model's input schema.

    ``problems`` lists every problem found, each a dict with ``row`` (the record's
    index, or None for the request as a whole), ``field`` and ``message``, so that a
    client can fix them all in one go.
    """

    def __init__(self, problems: list[dict]):
        self.problems = problems
        first = problems[0]
        where = f"record {first['row']}, " if first.get("row") is not None else ""
        field = f"field '{first['field']}': " if first.get("field") else ""
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(f"{where}{field}{first['message']}{more}")
