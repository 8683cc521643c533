"""The columns a list shows to both wires: built-in ones first, then the list's own, with their types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .tenant import SpList

__all__ = ["Column", "list_columns"]

_KIND = {"Integer": 1, "Text": 2, "Note": 3, "DateTime": 4, "Choice": 6, "Boolean": 8, "Number": 9, "Counter": 5}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # SharePoint TypeAsString: Text, Note, Number, DateTime, Boolean, Choice, Counter
    read_only: bool
    id: str

    @property
    def kind(self) -> int:
        """SharePoint's FieldTypeKind."""
        return _KIND.get(self.type, 2)


def list_columns(lst: SpList) -> list[Column]:
    def col(name: str, kind: str, read_only: bool = False) -> Column:
        return Column(name, kind, read_only, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{lst.id}/{name.lower()}")))
    cols = [col("ID", "Counter", True), col("Title", "Text")]
    cols += [col(c, lst.column_types.get(c, "Text")) for c in lst.columns if c != "Title"]
    return cols + [col("Created", "DateTime", True), col("Modified", "DateTime", True)]
