"""ProcessBench items: what a corrector is scored on, read and checked before anything is paid.

ProcessBench (Qwen, ACL 2025; hub dataset `Qwen/ProcessBench`) holds math solutions that several
models wrote, split into paragraphs; annotators labelled each with the index of its earliest
wrong paragraph (0-based), or -1 when every paragraph is right. Its splits are gsm8k (400
items), math, olympiadbench and omnimath (1,000 each); every item has `id`, `generator`,
`problem`, `steps` (the paragraphs), `final_answer_correct` and `label`.

`load_items` reads the hub dataset through `datasets` (the default), or a labelled file of your
own in the same fields, or a folder of such files: JSONL, a JSON list (the form of the hub
repository's own files) or Parquet. An item belongs to the split its `split` field names, else
to the one its file is named after (`gsm8k.json` -> gsm8k). Every field is checked first: a bad
one stops the command with one line naming the file, the line (`FILE[i]`: item i of a JSON list) and the field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from lema_plugin.errors import ConfigError
from lema_plugin.records import RecordError, check_fields, numbered_jsonl
from lema_plugin.settings import Settings

HUB = "Qwen/ProcessBench"
SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")  # the hub's splits, in its order
FIELDS = {"id": (str, int), "problem": (str,), "steps": (list,), "label": (int,), "final_answer_correct": (bool,),
          "generator": (str, type(None)), "split": (str, type(None))}
SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Item:
    """One labelled solution."""

    id: str
    split: str
    problem: str
    steps: tuple[str, ...]
    label: int  # 0-based index of the earliest wrong paragraph; -1: none is wrong
    final_answer_correct: bool
    generator: str = ""

    @property
    def erroneous(self) -> bool:
        return self.label != -1

    @property
    def dataset(self) -> str:
        """Which of the project's correction prompts fits: GSM8K's for gsm8k, MATH's for the rest."""
        return "gsm8k" if self.split == "gsm8k" else "math"


class ProcessBenchSource(Settings):
    """Which labelled items a corrector is scored on."""

    splits: tuple[str, ...] = Field((), description="Only these splits.", json_schema_extra={
        "default_text": "every split: the hub's " + ", ".join(SPLITS) + ", or those in --data-file"})
    data_file: str | None = Field(None, description="Your own labelled items in ProcessBench's fields (a JSONL, JSON or "
                                  "Parquet file, or a folder of them) instead of the hub dataset.",
                                  json_schema_extra={"default_text": f"the hub dataset {HUB}"})
    limit: int | None = Field(None, ge=1, description="Use only the first N items of each split.",
                              json_schema_extra={"default_text": "all"})

    def load(self) -> list[Item]:
        return load_items(self)


def load_items(source: ProcessBenchSource) -> list[Item]:
    """The items `source` names, split by split, at most `limit` of each."""
    wanted = tuple(dict.fromkeys(source.splits))
    if source.data_file is not None:
        rows = _read_local(Path(source.data_file))
    else:
        unknown = [s for s in wanted if s not in SPLITS]
        if unknown:
            raise ConfigError(f"--splits: {HUB} has no split {unknown[0]!r} (it has {', '.join(SPLITS)})")
        rows = _read_hub(wanted or SPLITS)
    items: list[Item] = []
    seen: dict[str, int] = {}
    keys: set[tuple[str, str]] = set()
    present: set[str] = set()
    for row, where, line, split in rows:
        item = _item(row, where, line, split)
        present.add(item.split)
        if (wanted and item.split not in wanted) or (source.limit and seen.get(item.split, 0) >= source.limit):
            continue
        if (item.split, item.id) in keys:
            raise RecordError(where, line, f"id {item.id!r} appears twice in split {item.split!r}", field="id")
        keys.add((item.split, item.id))
        seen[item.split] = seen.get(item.split, 0) + 1
        items.append(item)
    missing = [s for s in wanted if s not in seen]
    if missing and source.data_file is not None:
        raise ConfigError(f"--splits: {source.data_file} has no item of split {missing[0]!r}"
                          + (f" (it has {', '.join(sorted(present))})" if present else ""))
    return items


def _item(row, where: str, line: int | None, split: str) -> Item:
    if not isinstance(row, dict):
        raise RecordError(where, line, "expected a JSON object")
    for name in ("id", "problem", "steps", "label", "final_answer_correct"):
        if row.get(name) is None:
            raise RecordError(where, line, "missing", field=name)
    check_fields(row, FIELDS, where, line)
    steps = row["steps"]
    if not steps or not all(isinstance(s, str) for s in steps):
        raise RecordError(where, line, "expected a non-empty list of texts (the paragraphs)", field="steps")
    label = row["label"]
    if not -1 <= label < len(steps):
        raise RecordError(where, line, f"{label} is not -1 or the index of one of the {len(steps)} paragraphs "
                          "(0-based)", field="label")
    if not row["problem"].strip():
        raise RecordError(where, line, "empty", field="problem")
    return Item(str(row["id"]), row.get("split") or split, row["problem"], tuple(steps), label,
                row["final_answer_correct"], row.get("generator") or "")


def _read_hub(splits: tuple[str, ...]) -> list[tuple[dict, str, int, str]]:
    import datasets

    rows = []
    for split in splits:
        try:
            part = datasets.load_dataset(HUB, split=split)
        except Exception as exc:  # offline, hub down: one line, and what to do instead
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RecordError(f"hub:{HUB}", None, f"could not load split {split!r} ({reason}); give your own copy "
                              "with --data-file") from None
        rows += [(dict(row), f"hub:{HUB}/{split}", index, split) for index, row in enumerate(part, 1)]
    return rows


def _read_local(path: Path) -> list[tuple[dict, str, int | None, str]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not files:
            raise RecordError(path, None, f"no {', '.join(SUFFIXES)} file in this folder")
        return [row for file in files for row in _read_local(file)]
    if not path.exists():
        raise RecordError(path, None, "file not found")
    split = path.stem
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(row, str(path), index, split) for index, row in enumerate(pq.read_table(path).to_pylist(), 1)]
    if path.suffix == ".json" and _starts_with_list(path):
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordError(path, getattr(exc, "lineno", None), f"not valid JSON ({exc})") from None
        if not isinstance(rows, list):
            raise RecordError(path, None, "expected a list of items")
        return [(row, f"{path}[{index}]", None, split) for index, row in enumerate(rows)]  # no lines: the item's index
    if path.suffix in (".jsonl", ".json"):
        return [(row, str(path), line, split) for line, row in numbered_jsonl(path)]
    raise RecordError(path, None, "unsupported file type (use .jsonl, .json or .parquet)")


def _starts_with_list(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4096).lstrip().startswith(b"[")
