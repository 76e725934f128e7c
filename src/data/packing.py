"""Concat packing: documents back to back, cut into equal windows; as a Grain IterDataset that
streams documents, or as a Grain data source with random access to the windows when every
document's token count is known.

Grain's own ConcatThenSplitIterDataset (0.2.18) does not resume exactly when a document ends
exactly at a window boundary under a batched, shuffled parent (its checkpoint then records the
parent's state after the next document was already read); this one's state is simply the
parent's state before the document being cut and the offset into it, so `set_state` puts the
stream back exactly.
"""

from typing import Any, Callable

import grain
import numpy as np


class ConcatWindows(grain.IterDataset):
    """Elements: dicts of equal-length 1-D arrays -> dicts of arrays of `length` each."""

    def __init__(self, parent: grain.IterDataset, *, length: int):
        super().__init__(parent)
        self.length = length

    def __iter__(self) -> "_ConcatWindowsIterator":
        return _ConcatWindowsIterator(self._parent.__iter__(), self.length)


class _ConcatWindowsIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, length: int):
        super().__init__(parent)
        self.length = length
        self._head_state = parent.get_state()  # the parent's state before `_current`
        self._current: dict[str, np.ndarray] | None = None
        self._offset = 0  # tokens of `_current` already emitted

    def __next__(self) -> dict[str, np.ndarray]:
        pieces, need = [], self.length
        while need:
            if self._current is None or self._offset == _size(self._current):
                self._head_state = self._parent.get_state()
                self._current, self._offset = next(self._parent), 0
            take = min(need, _size(self._current) - self._offset)
            pieces.append({k: v[self._offset:self._offset + take] for k, v in self._current.items()})
            self._offset += take
            need -= take
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._head_state, "offset": self._offset if self._current is not None else 0,
                "started": self._current is not None}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._head_state = state["parent"]
        self._current = next(self._parent) if state["started"] else None
        self._offset = state["offset"]


def _size(element: dict[str, np.ndarray]) -> int:
    return len(next(iter(element.values())))


class StreamWindows:
    """Random access to the windows of `length` tokens cut from documents joined back to back:
    a Grain data source (`grain.MapDataset.source(...)`).

    `counts[i]`: document i's token count; `piece(i, start, stop)`: its tokens [start, stop)
    as a dict of equal-length arrays. A window spanning documents takes a piece of each; the
    stream's tail shorter than a window is dropped. Shuffling these windows (Levanter's order)
    makes a batch's rows, and a short run's tokens, come from across the whole corpus rather
    than from the few documents read first.
    """

    def __init__(self, piece: Callable[[int, int, int], dict[str, np.ndarray]], *,
                 counts: np.ndarray, length: int):
        self.piece, self.length = piece, length
        self._counts = np.asarray(counts, np.int64)
        self._ends = np.cumsum(self._counts)

    def __len__(self) -> int:
        return int(self._ends[-1]) // self.length if len(self._ends) else 0

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        start = int(index) * self.length
        stop, pieces = start + self.length, []
        document = int(np.searchsorted(self._ends, start, side="right"))
        while start < stop:
            begin = int(self._ends[document] - self._counts[document])
            end = min(stop, int(self._ends[document]))
            pieces.append(self.piece(document, start - begin, end - begin))
            start = end
            document += 1
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
