"""Systemic glucocorticoids and their prednisone-equivalent potency (the table the mappings rely on).

Rule: "> 10 mg/day prednisone equivalent" is a clinical convention, not a code: this is the
conversion table, stated once. Equivalent oral doses to 5 mg prednisone (standard pharmacology
references): prednisolone 5 mg, methylprednisolone 4 mg, triamcinolone 4 mg, dexamethasone 0.75 mg,
betamethasone 0.6 mg, hydrocortisone 20 mg, cortisone 25 mg, deflazacort 6 mg.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.criteria import ATC, RXNORM, CodeSet


@dataclass(frozen=True)
class Glucocorticoid:
    name: str
    codes: CodeSet
    prednisone_factor: float  # mg prednisone per mg of this drug


def _drug(name: str, rxnorm: str | None, atc: str, equivalent_to_5mg_prednisone: float) -> Glucocorticoid:
    exact = frozenset({(RXNORM, rxnorm)}) if rxnorm else frozenset()
    return Glucocorticoid(name, CodeSet(exact, ((ATC, atc),), (name,)), 5.0 / equivalent_to_5mg_prednisone)


GLUCOCORTICOIDS: tuple[Glucocorticoid, ...] = (
    _drug("prednisone", "8640", "H02AB07", 5),
    _drug("prednisolone", "8638", "H02AB06", 5),
    _drug("methylprednisolone", "6902", "H02AB04", 4),
    _drug("triamcinolone", "10759", "H02AB08", 4),
    _drug("dexamethasone", "3264", "H02AB02", 0.75),
    _drug("betamethasone", "1514", "H02AB01", 0.6),
    _drug("hydrocortisone", "5492", "H02AB09", 20),
    _drug("cortisone", "2878", "H02AB10", 25),
    _drug("deflazacort", None, "H02AB13", 6),
)

# Routes that are not systemic: the protocols exempt inhaled and topical steroids, and an intravitreal
# injection (bevacizumab for macular degeneration) is no systemic anticancer therapy.
NON_SYSTEMIC_ROUTE_WORDS = (
    "inhal",
    "topical",
    "cutaneous",
    "nasal",
    "ophthalm",
    "otic",
    "intra-articular",
    "intraarticular",
    "rectal",
    "respiratory",
    "transdermal",
    "intravitreal",  # an injection into the eye (anti-VEGF for macular degeneration, a steroid implant)
    "intraocular",
)
# SNOMED route codes for the same (route of administration value set).
NON_SYSTEMIC_ROUTE_CODES = frozenset(
    {
        "18679011000001101",  # inhalation
        "447694001",  # respiratory tract
        "6064005",  # topical
        "359540000",  # cutaneous
        "46713006",  # nasal
        "54485002",  # ophthalmic
        "418401004",  # intravitreal
        "10547007",  # otic
        "12130007",  # intra-articular
        "37161004",  # rectal
        "45890007",  # transdermal
    }
)
