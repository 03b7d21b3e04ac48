"""Where a record keeps its question, its solution text and its gold answer.

Every file lema-plugin writes names these three things the same way across commands (`question`,
`text`, `answer`), except where a record holds more than one text and says which: a correction's
`corrected_solution`, a CoT record's `rationale`. Other tools spell them their own way
(`completion`, `output`, `target`, ...). `lema grade` and `lema import` look for the first field
present in these lists, so any file the tool writes, and the common outside layouts, are read
with no flags; `--text-field`, `--question-field` and `--gold-field` name a field when it is not
one of these.
"""
from __future__ import annotations

# the solution text to grade, most specific first
TEXT_FIELDS = ("text", "corrected_solution", "rationale", "completion", "response", "output", "solution", "raw")
# the gold answer: a final answer, a GSM8K rationale ending "#### N" or a MATH solution with \boxed{}
GOLD_FIELDS = ("answer", "gold_answer", "target", "gold", "ground_truth", "solution")
QUESTION_FIELDS = ("question", "problem")


def get(record: dict, name: str):
    """`record[name]`, where a dotted name reaches into nested objects (`doc.question`)."""
    value = record
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def first_field(record: dict, names: tuple[str, ...], given: str | None = None,
                skip: tuple[str, ...] = ()) -> str | None:
    """The field to read: `given` when the user named one, else the first of `names` holding a
    non-empty value (a text, or a list of them); `skip` leaves out fields already used."""
    if given:
        return given
    for name in names:
        if name in skip:
            continue
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return name
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return name
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name in GOLD_FIELDS:
            return name
    return None
