"""A compact table of custom_ids: 64-bit hashes and a byte of flags each, never the ids themselves.

A job over a million lines must know, for every id, whether INPUT has it (duplicates) and whether
OUTPUT already holds its record (resume). A ``set`` of the ids would cost ~100 bytes an id; this
table costs 9 bytes a slot (open addressing in an ``array`` of hashes and a ``bytearray`` of flags,
at most half full): ~18 MB for 1,000,000 ids. Two ids share a hash with probability ~n²/2⁶⁵
(3·10⁻⁸ for a million); the hash is Python's keyed string hash, fresh in each process.
"""

from __future__ import annotations

from array import array

__all__ = ["DONE_ERROR", "DONE_OK", "IN_INPUT", "IdTable", "id_hash"]

#: INPUT has this id
IN_INPUT = 1
#: OUTPUT holds a success record for it
DONE_OK = 2
#: OUTPUT holds an error record for it
DONE_ERROR = 4

_MASK = (1 << 64) - 1
_MIN_SLOTS = 1024


def id_hash(custom_id: str) -> int:
    """The id's 64-bit key (never 0, which marks an empty slot)."""
    return (hash(custom_id) & _MASK) or 1


class IdTable:
    """id hash -> flags (``IN_INPUT | DONE_OK | DONE_ERROR``); flags only accumulate or are cleared.

    An empty slot's flags are always 0, so looking up or clearing an unknown id needs no test of
    its key: its empty slot reads 0 and stays 0."""

    __slots__ = ("_flags", "_keys", "_mask", "_used")

    def __init__(self, capacity: int = 0) -> None:
        slots = _MIN_SLOTS
        while slots < capacity * 2:
            slots *= 2
        self._keys = array("Q", [0]) * slots
        self._flags = bytearray(slots)
        self._mask = slots - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def _slot(self, key: int) -> int:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key or found == 0:
                return slot
            slot = (slot + 1) & mask

    def get(self, custom_id: str) -> int:
        """The id's flags (0: unknown)."""
        return self._flags[self._slot(id_hash(custom_id))]

    def add(self, custom_id: str, flags: int) -> int:
        """Set ``flags`` on the id (adding it if new); returns the flags it had before (0: new)."""
        key = id_hash(custom_id)
        slot = self._slot(key)
        before = self._flags[slot]
        if not self._keys[slot]:
            self._keys[slot] = key
            self._used += 1
            self._flags[slot] = flags
            if self._used * 2 > len(self._keys):
                self._grow()
            return 0
        self._flags[slot] = before | flags
        return before

    def clear(self, custom_id: str, flags: int) -> None:
        """Remove ``flags`` from the id (it stays in the table)."""
        self._flags[self._slot(id_hash(custom_id))] &= ~flags & 0xFF

    def count(self, any_of: int, lacking: int = 0) -> int:
        """How many ids have at least one flag of ``any_of`` and none of ``lacking``."""
        return sum(1 for f in self._flags if f & any_of and not f & lacking)

    def _grow(self) -> None:
        old_keys, old_flags = self._keys, self._flags
        slots = len(old_keys) * 2
        self._keys = array("Q", [0]) * slots
        self._flags = bytearray(slots)
        self._mask = slots - 1
        keys, flags, mask = self._keys, self._flags, self._mask
        for i, key in enumerate(old_keys):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                flags[slot] = old_flags[i]
