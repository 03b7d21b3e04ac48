"""Near-duplicate questions: the same normalized text, or many shared word n-grams.

Used to drop new questions that repeat a seed or each other, and those that nearly repeat a
GSM8K / MATH test question (contamination).
"""
from __future__ import annotations

from collections import Counter, defaultdict

from lema_plugin.text import dedupe_key

def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of the duplicate key (`text.dedupe_key`) (the whole text as one gram when it is shorter)."""
    words = dedupe_key(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class NearDuplicateIndex:
    """Finds a stored text that a new text nearly repeats.

    Near-duplicate means: the same normalized text, or a share of shared word n-grams of at least
    `max_overlap`, measured against the smaller of the two n-gram sets (so a question pasted
    inside a longer one still counts). An inverted index keeps lookups fast over a test set.
    """

    def __init__(self, n: int = 6, max_overlap: float = 0.5):
        self.n, self.max_overlap = n, max_overlap
        self._exact: dict[str, str] = {}
        self._grams: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._keys: list[str] = []
        self._sizes: list[int] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, text: str, key: str) -> None:
        self._exact.setdefault(dedupe_key(text), key)
        grams = ngrams(text, self.n)
        slot = len(self._keys)
        self._keys.append(key)
        self._sizes.append(len(grams))
        for gram in grams:
            self._grams[gram].append(slot)

    def find(self, text: str) -> str | None:
        """The key of a stored near-duplicate of `text`, or None."""
        exact = self._exact.get(dedupe_key(text))
        if exact is not None:
            return exact
        grams = ngrams(text, self.n)
        if not grams:
            return None
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(self._grams.get(gram, ()))
        for slot, count in shared.items():
            if count / min(len(grams), self._sizes[slot]) >= self.max_overlap:
                return self._keys[slot]
        return None
