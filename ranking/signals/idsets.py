"""Sets of item ids looked up for a whole request at once: a rule's named ids, and the
in-process signal store's attribute sets. Plain Python and numpy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

ID_TABLE_SIZE = 1 << 16  # 64 KiB per id set: a few percent of false hits, each confirmed


@dataclass(frozen=True)
class IdSet:
    """Item ids, with a table of which hash slots hold a member for vectorised lookups (the
    in-process store's attribute sets): candidates that land on a marked slot are confirmed
    against the set, so the answer is exact. Built where it is used (a rule's ids when rules
    compile: bounded by the rule, not the catalog)."""

    members: frozenset[str]

    @cached_property
    def table(self) -> np.ndarray:
        """Built on the first lookup by slots (a rule's ids are matched by set intersection,
        merchandising.compiled.ItemFacts.members_mask, and never need it)."""
        table = np.zeros(ID_TABLE_SIZE, dtype=bool)
        hashes = np.fromiter(map(hash, self.members), dtype=np.int64, count=len(self.members))
        table[hashes & (ID_TABLE_SIZE - 1)] = True
        return table

    def mask(self, item_ids: Sequence[str], slots: np.ndarray) -> np.ndarray:
        """Which of `item_ids` are members (`slots`: their `id_slots`): one table lookup per
        candidate, each hit confirmed exactly."""
        mask = self.table[slots]
        hits = np.flatnonzero(mask).tolist()
        if hits:
            hit_ids = map(item_ids.__getitem__, hits)
            mask[hits] = np.fromiter(map(self.members.__contains__, hit_ids), bool, len(hits))
        return mask


def id_slots(item_ids: Sequence[str]) -> np.ndarray:
    """The hash slot of each id (computed once per request, shared by every set's lookup)."""
    hashes = np.fromiter(map(hash, item_ids), dtype=np.int64, count=len(item_ids))
    return hashes & (ID_TABLE_SIZE - 1)
