"""The one gold-answer reader and the one duplicate key."""
import pytest

from lema_plugin.text import dedupe_key, split_gsm8k


@pytest.mark.parametrize("a, b", [
    ("2 + 3 = 6.\nThe answer is 6.", "2+3=6. the ANSWER is 6"),
    ("Tom has 5 apples.", "tom  has 5 apples!"),
])
def test_same_text_same_key(a, b):
    assert dedupe_key(a) == dedupe_key(b)


@pytest.mark.parametrize("a, b", [
    ("2 + 3 = 6", "2 * 3 = 6"),  # an operator is content
    ("The answer is 6.", "The answer is 7."),
])
def test_different_text_different_key(a, b):
    assert dedupe_key(a) != dedupe_key(b)


def test_split_gsm8k():
    assert split_gsm8k("She has 3.\nSo 1,200 in all.\n#### 1,200") == ("She has 3.\nSo 1,200 in all.\n", "1200")
    assert split_gsm8k("no marker") == ("no marker", None)
    assert split_gsm8k("x\n####  ") == ("x\n", None)
