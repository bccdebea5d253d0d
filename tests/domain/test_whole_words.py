"""Names are found in record texts as whole words: `WholeWords` must find exactly what the plain
regular expression `\\b(?:name|...)\\b` finds (it is only a faster way to run that search), except a name
negated by the words just before it ("no leptomeningeal disease")."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.criteria import WholeWords

# Word and non-word characters, digits, underscore and a letter outside ASCII: the cases \b tells apart.
ALPHABET = "ab -_1é(."


def regex(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(name) for name in names) + r")\b")


@pytest.mark.parametrize(
    ("names", "text", "found"),
    [
        (("cisplatin",), "cisplatin 50 mg", True),
        (("cisplatin",), "carboplatin/cisplatin", True),
        (("platin",), "cisplatin", False),  # inside a word
        (("platin",), "cisplatin platin", True),  # a rejected start, then a whole word later
        (("a b", "b"), "xa b", True),  # a whole word starting inside a rejected candidate
        (("(x",), "a(x", True),  # a name starting with a non-word character needs a word before it
        (("(x",), " (x", False),
        (("ab",), "ab_", False),  # underscore is a word character
        (("ab",), "éab", False),
    ],
)
def test_whole_words_examples(names: tuple[str, ...], text: str, found: bool) -> None:
    assert (WholeWords(names).search(text) is not None) is found
    assert (regex(names).search(text) is not None) is found


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.text(ALPHABET, min_size=1, max_size=4), min_size=1, max_size=4).map(tuple),
    st.text(ALPHABET, max_size=24),
)
def test_whole_words_finds_what_the_regex_finds(names: tuple[str, ...], text: str) -> None:
    assert (WholeWords(names).search(text) is None) == (regex(names).search(text) is None)


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (("leptomeningeal disease",), "treated brain metastasis, stable; no leptomeningeal disease"),
        (("breastfeeding",), "not breastfeeding"),
        (("tuberculosis",), "no history of tuberculosis"),
        (("cord compression",), "no evidence of cord compression on mri"),
        (("brain metastases",), "metastatic nsclc without brain metastases"),
        (("pregnant",), "not currently pregnant"),
        (("malignancy",), "negative for malignancy"),
        (("metastatic disease",), "leiomyosarcoma of thigh, no metastatic disease"),
        (("breastfeeding",), "not pregnant or breastfeeding"),  # the cue reaches across one "or"
        (("pneumonia",), "no fever or pneumonia"),
    ],
)
def test_a_name_negated_just_before_it_is_no_mention(names: tuple[str, ...], text: str) -> None:
    assert WholeWords(names).search(text) is None


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (("pregnant",), "no longer pregnant"),  # a cue must reach the name through qualifiers only
        (("pneumonitis",), "no improvement of pneumonitis"),
        (("pneumonia",), "no fever, pneumonia"),  # a cue does not cross a clause end
        (("cancer",), "breast cancer, no evidence of disease"),  # the negation follows the name
        (("pregnant",), "cannot rule out: pregnant"),
        (("tuberculosis",), "no tb screening done; tuberculosis"),  # the same name later, not negated
        (("hiv",), "notable hiv"),  # "not" inside a word is no cue
        (("breastfeeding",), "not sure whether pregnant or breastfeeding"),  # the words leave it open
        (("breastfeeding",), "no longer pregnant, or breastfeeding"),
        (("pneumonia",), "no fever but then chills or pneumonia"),  # "or" too far from the cue
    ],
)
def test_a_name_the_words_leave_open_is_still_a_mention(names: tuple[str, ...], text: str) -> None:
    assert WholeWords(names).search(text) is not None


@pytest.mark.parametrize(
    ("names", "text", "found"),
    [
        (("cutaneous",), "adalimumab 40 mg sub-cutaneous every 2 weeks", False),  # a systemic route
        (("cutaneous",), "methotrexate 15 mg sub cutaneous once weekly", False),
        (("cutaneous",), "subcutaneous", False),
        (("cutaneous",), "cutaneous lupus", True),
        (("cutaneous",), "topical, cutaneous", True),
        (("cutaneous",), "club cutaneous", True),  # "sub" must be a word of its own
        (("total gastrectomy",), "sub-total gastrectomy", False),
    ],
)
def test_a_name_joined_to_sub_is_another_word(names: tuple[str, ...], text: str, found: bool) -> None:
    assert (WholeWords(names).search(text) is not None) is found
