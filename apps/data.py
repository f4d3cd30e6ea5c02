"""The Palmer penguins data and what we know about each of its columns.

The column facts below (categories, plausible ranges, whether a value may be missing)
are domain knowledge written down once. Training copies them into each model's
manifest, and every app validates its input against the manifest, so a new model with
new columns needs no change in the apps.
"""

import hashlib
from dataclasses import dataclass

import pandas as pd
from palmerpenguins import load_penguins


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: its type, the values it may take, and whether it may be missing."""

    name: str
    type: str  # "number" or "category"
    description: str
    nullable: bool
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None

    def to_dict(self) -> dict:
        """The JSON form stored in a manifest's input schema."""
        entry: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "description": self.description,
        }
        if self.type == "category":
            entry["categories"] = list(self.categories)
        else:
            entry.update(minimum=self.minimum, maximum=self.maximum, unit=self.unit)
        entry["nullable"] = self.nullable
        return entry


SPECIES = ColumnSpec(
    "species",
    "category",
    "Penguin species",
    nullable=False,
    categories=("Adelie", "Chinstrap", "Gentoo"),
)
ISLAND = ColumnSpec(
    "island",
    "category",
    "Island in the Palmer Archipelago where the bird was seen",
    nullable=False,
    categories=("Biscoe", "Dream", "Torgersen"),
)
SEX = ColumnSpec("sex", "category", "Sex of the bird", nullable=True, categories=("female", "male"))
BILL_LENGTH = ColumnSpec(
    "bill_length_mm",
    "number",
    "Bill (culmen) length",
    nullable=True,
    minimum=25.0,
    maximum=70.0,
    unit="mm",
)
BILL_DEPTH = ColumnSpec(
    "bill_depth_mm",
    "number",
    "Bill (culmen) depth",
    nullable=True,
    minimum=10.0,
    maximum=25.0,
    unit="mm",
)
FLIPPER_LENGTH = ColumnSpec(
    "flipper_length_mm",
    "number",
    "Flipper length",
    nullable=True,
    minimum=150.0,
    maximum=250.0,
    unit="mm",
)
BODY_MASS = ColumnSpec(
    "body_mass_g",
    "number",
    "Body mass",
    nullable=True,
    minimum=2000.0,
    maximum=7500.0,
    unit="g",
)
COLUMNS = {
    c.name: c for c in (SPECIES, ISLAND, SEX, BILL_LENGTH, BILL_DEPTH, FLIPPER_LENGTH, BODY_MASS)
}


def load_data() -> pd.DataFrame:
    """Return the 344 penguins shipped inside the ``palmerpenguins`` package (no download)."""
    return load_penguins()[[*COLUMNS, "year"]]


def fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 of the data's CSV form: the same rows give the same fingerprint anywhere.

    Stored in the manifest, it tells later whether a model was trained on the data we
    think it was, and whether the data changed under us.
    """
    csv = frame.to_csv(index=False, lineterminator="\n", float_format="%.6g")
    return hashlib.sha256(csv.encode("utf-8")).hexdigest()
