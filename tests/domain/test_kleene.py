"""Truth tables of the three-valued logic (DESIGN.md §2) and of the trial verdict rule."""

import itertools

import pytest

from service.domain.criteria import CombinationCode, Criterion, NotComputable, Result, ScreeningConfirmation
from service.domain.evaluate import CriterionResult, Verdict, combine_verdict, kleene

M, N, U = Result.MET, Result.NOT_MET, Result.UNKNOWN


@pytest.mark.parametrize(
    ("a", "b", "all_of", "any_of"),
    [
        (M, M, M, M),
        (M, N, N, M),
        (M, U, U, M),
        (N, N, N, N),
        (N, U, N, U),
        (U, U, U, U),
    ],
)
def test_and_or_are_kleene(a: Result, b: Result, all_of: Result, any_of: Result) -> None:
    for pair in ([a, b], [b, a]):
        assert kleene(CombinationCode.ALL_OF, pair) is all_of
        assert kleene(CombinationCode.ANY_OF, pair) is any_of


def test_negation() -> None:
    assert [r.negated() for r in (M, N, U)] == [N, M, U]


@pytest.mark.parametrize("values", list(itertools.product((M, N, U), repeat=3)))
def test_at_least_and_at_most_count_unknowns_both_ways(values: tuple[Result, ...]) -> None:
    met, unknown = values.count(M), values.count(U)
    for n in (0, 1, 2, 3):
        at_least = kleene(CombinationCode.AT_LEAST, list(values), n)
        if met >= n:
            assert at_least is M
        elif met + unknown < n:
            assert at_least is N
        else:
            assert at_least is U
        at_most = kleene(CombinationCode.AT_MOST, list(values), n)
        if met > n:
            assert at_most is N
        elif met + unknown <= n:
            assert at_most is M
        else:
            assert at_most is U


def _result(result: Result, exclude: bool = False, screening: bool = False) -> CriterionResult:
    rule = ScreeningConfirmation() if screening else NotComputable("test")
    return CriterionResult(Criterion("c", "c", rule, exclude=exclude), result, "r")


@pytest.mark.parametrize(
    ("results", "verdict"),
    [
        ([_result(M), _result(N, exclude=True)], Verdict.ELIGIBLE),
        ([_result(N)], Verdict.INELIGIBLE),
        ([_result(M, exclude=True)], Verdict.INELIGIBLE),
        ([_result(U), _result(N)], Verdict.INELIGIBLE),  # a decided failure wins over unknowns
        ([_result(M), _result(U, exclude=True)], Verdict.UNDETERMINED),
        ([_result(M), _result(U, screening=True)], Verdict.ELIGIBLE),  # screening never decides
    ],
)
def test_verdict_rule(results: list[CriterionResult], verdict: Verdict) -> None:
    assert combine_verdict(results) is verdict


@pytest.mark.parametrize("code", list(CombinationCode))
@pytest.mark.parametrize("values", list(itertools.product((M, N, U), repeat=3)))
def test_a_decided_combination_stays_decided_whatever_its_unknowns_turn_out_to_be(
    code: CombinationCode, values: tuple[Result, ...]
) -> None:
    """Monotone: the catalog index reads only the Patient and Conditions and takes every other rule as unknown
    (evaluate_criterion `reads`); a combination it finds met or not met must have that result whatever the
    unread rules say."""
    for n in (0, 1, 2, 3):
        decided = kleene(code, list(values), n)
        if decided is U:
            continue
        unknown_at = [i for i, v in enumerate(values) if v is U]
        for filled in itertools.product((M, N), repeat=len(unknown_at)):
            known = list(values)
            for i, value in zip(unknown_at, filled, strict=True):
                known[i] = value
            assert kleene(code, known, n) is decided, (code, values, n, known)
