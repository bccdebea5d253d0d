"""Checks of a criterion's code set against named examples, for every trial's tests (issue 10).

A code class (ATC, ICD-10-CM prefix) is used only with the members that do not mean the criterion
listed as exceptions, and a names list holds phrases, never single words that occur in unrelated
records. So each code set is tested with examples a reviewer can read: records that must match and
records that must not (class members that do not mean the criterion, near-miss texts).

An example is a code token (`atc:L01XL02`, `icd10cm:C54.1`, the mapping syntax) or a record text
(`text: Transfusion of allogeneic red blood cells`), matched as the evaluator matches one record.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.domain.criteria import CodeSet
from service.domain.facts import matches
from service.mapping import parse_code_token

TEXT = "text:"


def is_text(example: str) -> bool:
    return example.startswith(TEXT)


def record_matches(codes: CodeSet, example: str) -> bool:
    """Whether one record, coded by the example's code or carrying only its text, is matched."""
    if is_text(example):
        return matches(codes, (), example[len(TEXT) :].strip().lower())
    return matches(codes, (parse_code_token(example),), "")


def code_set_problems(codes: CodeSet, match: Iterable[str], no_match: Iterable[str]) -> list[str]:
    """The examples the code set gets wrong, plus what the examples fail to test: a class code needs a
    coded example each way, a names list a text each way (a near miss among the ones that must not match)."""
    match, no_match = list(match), list(no_match)
    problems = [f"should match {e!r}" for e in match if not record_matches(codes, e)]
    problems += [f"should not match {e!r}" for e in no_match if record_matches(codes, e)]
    if codes.prefixes and not (any(not is_text(e) for e in match) and any(not is_text(e) for e in no_match)):
        problems.append("a code class needs coded examples that must and must not match")
    if codes.names and not (any(is_text(e) for e in match) and any(is_text(e) for e in no_match)):
        problems.append("a names list needs texts that must match and near misses that must not")
    return problems


def needs_examples(codes: CodeSet) -> bool:
    """Code sets whose reach is not obvious from their codes: classes and names."""
    return bool(codes.prefixes or codes.names)
