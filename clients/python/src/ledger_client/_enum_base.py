"""The base of the generated enums (`_enums.py`, written at build time from the proto).

A number the client does not know (a newer server's new result code) must never read as a
known member, least of all as success: it becomes an `UNRECOGNIZED` pseudo-member that keeps
the number, compares unequal to every real member, and is never `OK`.
"""

from __future__ import annotations

import enum


class ProtoEnum(enum.Enum):
    """An enum whose values are the wire numbers of a proto enum."""

    @classmethod
    def _missing_(cls, value: object) -> ProtoEnum | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = object.__new__(cls)
        member._name_ = "UNRECOGNIZED"
        member._value_ = value
        return member

    @property
    def recognized(self) -> bool:
        return self._name_ != "UNRECOGNIZED"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {self._value_}>"
