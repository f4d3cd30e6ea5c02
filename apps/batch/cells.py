"""Arrow columns into the schema's :class:`~apps.registry.schema.Cells`: kinds, not verdicts.

A CSV cell is text and is typed as the API's CSV reader types it
(:func:`apps.registry.tabular.typed_record`): stripped, empty means missing, a number
where the text is one. Arrow casts a whole column of numbers at C speed; when a column
holds something Arrow will not cast (a word, a space, ``1_000``), the texts that fail
are found by halving, and the API's own function types each of them, so the two
readers cannot disagree. A Parquet cell has a type already, which decides its kind,
as a JSON value's type does in the API.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apps.registry.schema import NULL, NUMBER, OTHER, TEXT, Cells, Column, InputSchema
from apps.registry.tabular import typed_record

EXACT_BELOW = 32
"""Halving stops at this many texts; Python's reader then types them one by one."""


def text_cells(array: pa.ChunkedArray | pa.Array, column: Column) -> Cells:
    """Cells of a CSV column read as text (null for an empty cell)."""
    array = _combined(array)
    null = null_mask(array)
    if column.type == "number":
        try:
            numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            pass  # some text is not a plain number: type the distinct texts below
        else:
            kinds = np.where(null, NULL, NUMBER).astype(np.uint8)
            return Cells(kinds, numbers, np.zeros(len(array), dtype=int))
    encoded = pc.dictionary_encode(array)
    ids = pc.fill_null(encoded.indices, -1).to_numpy()
    kinds, numbers, texts = _typed_texts(encoded.dictionary, column)
    kinds, numbers = np.append(kinds, NULL)[ids], np.append(numbers, 0.0)[ids]
    return Cells(kinds.astype(np.uint8), numbers, np.where(kinds == TEXT, ids, 0), texts)


def _typed_texts(texts: pa.Array, column: Column) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Kind, number and stripped text of each distinct text, as the API's reader types it."""
    if column.type == "number" and len(texts) > EXACT_BELOW:
        try:
            numbers = pc.cast(texts, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            middle = len(texts) // 2
            first = _typed_texts(texts.slice(0, middle), column)
            second = _typed_texts(texts.slice(middle), column)
            both = [np.concatenate((a, b)) for a, b in zip(first[:2], second[:2], strict=True)]
            return both[0], both[1], first[2] + second[2]
        return np.full(len(texts), NUMBER), numbers, [""] * len(texts)
    schema = InputSchema([column])
    values = [typed_record({column.name: text}, schema)[column.name] for text in texts.to_pylist()]
    kinds = [NULL if v is None else TEXT if isinstance(v, str) else NUMBER for v in values]
    numbers = [v if isinstance(v, float) else 0.0 for v in values]
    return (
        np.array(kinds, dtype=int),
        np.array(numbers),
        [v if isinstance(v, str) else "" for v in values],
    )


def typed_cells(array: pa.ChunkedArray | pa.Array, column: Column) -> Cells:
    """Cells of a typed (Parquet) column: numbers, texts, or anything else by type."""
    array = _combined(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind, numbers, ids, texts = OTHER, np.zeros(len(array)), np.zeros(len(array), dtype=int), []
    kind_of_type = array.type
    if (
        pa.types.is_integer(kind_of_type)
        or pa.types.is_floating(kind_of_type)
        or pa.types.is_decimal(kind_of_type)
    ):
        kind = NUMBER
        numbers = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    elif pa.types.is_string(kind_of_type) or pa.types.is_large_string(kind_of_type):
        kind = TEXT
        encoded = pc.dictionary_encode(array)
        ids = pc.fill_null(encoded.indices, 0).to_numpy()
        texts = encoded.dictionary.to_pylist()
    null = null_mask(array)
    return Cells(np.where(null, NULL, kind).astype(np.uint8), numbers, ids, texts)


def null_mask(array: pa.Array) -> np.ndarray:
    """Which values are null, as a NumPy mask, read from Arrow's validity bitmap."""
    if array.null_count == 0:
        return np.zeros(len(array), dtype=bool)
    if array.null_count == len(array):
        return np.ones(len(array), dtype=bool)
    bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, bitorder="little")[array.offset : array.offset + len(array)]
    return valid == 0


def _combined(array: pa.ChunkedArray | pa.Array) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
