"""NCT06494995 names lists hold no bare word that named unrelated records (issue 10). Its code sets and
names are tested with examples in tests/code_set_examples.yaml (tests/test_code_sets.py); this check stays
here because another trial still uses one of these words on purpose (melanoma exc-9.2a "hepatitis", a
liver-disease criterion that only ever leads to unknown).

Reads only mappings/: runs without ../shared.
"""

from __future__ import annotations

from tests.test_code_sets import CATALOG, _code_set, _leaves

# "allogeneic" is in blood transfusions, "resection" in endoscopic polypectomies, "colitis" and
# "hepatitis" in infections, "pregnancy" in negative pregnancy tests and contraception advice.
BARE_WORDS = {"allogeneic", "resection", "transplant", "surgery", "colitis", "hepatitis", "pregnancy"}


def test_no_names_list_holds_a_bare_word_that_names_no_concept() -> None:
    for criterion in _leaves(CATALOG.trials["NCT06494995"].criteria):
        codes = _code_set(criterion)
        bare = set(codes.names) & BARE_WORDS if codes is not None else set()
        assert not bare, f"{criterion.link_id}: {sorted(bare)}"
