"""Mapping files (mappings/*.yaml, format in mappings/README.md) → domain criteria.

Rule: every problem raises MappingError naming the criterion and what is wrong; nothing is
guessed. The YAML is parsed by the catalog; this module only reads the resulting dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from service.domain.criteria import (
    PREFIX_SYSTEMS,
    SYSTEM_ALIASES,
    AgeRule,
    ArmEligibility,
    CodeSet,
    Combination,
    CombinationCode,
    Comparator,
    ConditionRule,
    CorticosteroidDoseRule,
    CreatinineClearanceRule,
    Criterion,
    DataNeed,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ProcedureRule,
    ProgressionAfterTherapyRule,
    Rule,
    ScreeningConfirmation,
    SexRule,
    StageRule,
    TestRule,
    TrialCriteria,
    Window,
)
from service.errors import MappingError

LINK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$")
STAGE = re.compile(r"^(0|I|II|III|IV)[A-D]?$")
PROTEIN_CHANGE = re.compile(r"[ACDEFGHIKLMNPQRSTVWY]\d{1,4}[ACDEFGHIKLMNPQRSTVWY]")
COMMON_KEYS = {"id", "text", "exclude", "note", "machine_derived"}
RULE_KEYS = (
    "age", "sex", "condition", "stage", "observation", "test", "medication", "procedure",
    "creatinine_clearance", "corticosteroid_dose", "progression_after", "not_computable",
    "screening", "all_of", "any_of", "at_least", "at_most",
)  # fmt: skip


# Recorded statuses are not test results (DESIGN.md §2): "pregnancy status: not pregnant" is what someone
# wrote down, not a negative pregnancy test, so a `test` rule that reads a negative result may not list them.
RECORDED_STATUS_CODES = frozenset({(SYSTEM_ALIASES["loinc"], "82810-3")})


def parse_trial_criteria(doc: Mapping[str, Any], study_id: str, title: str) -> TrialCriteria:
    default_window = _int(doc.get("lab_window_days", 28), "lab_window_days")
    parser = _Parser(default_window)
    criteria = parser.criteria(doc.get("criteria"), "criteria")
    arms = tuple(
        ArmEligibility(
            group=_str(arm, "group"),
            title=_str(arm, "title"),
            criteria=parser.criteria(arm.get("criteria"), f"arms[{arm.get('group')}]"),
        )
        for arm in _list(doc.get("arms", []), "arms")
    )
    reviewed = doc.get("status", "active") == "active"
    return TrialCriteria(study_id, title, criteria, arms, default_window, reviewed)


class _Parser:
    def __init__(self, default_window_days: int) -> None:
        self.default_window = Window(default_window_days, is_default=True)
        self.seen: set[str] = set()

    def criteria(self, raw: Any, where: str) -> tuple[Criterion, ...]:
        items = _list(raw, where)
        if not items:
            raise MappingError(f"{where}: at least one criterion is required")
        return tuple(self.criterion(item, where) for item in items)

    def criterion(self, raw: Any, where: str) -> Criterion:
        if not isinstance(raw, Mapping):
            raise MappingError(f"{where}: a criterion must be a mapping, got {type(raw).__name__}")
        link_id = raw.get("id")
        if not isinstance(link_id, str) or not LINK_ID.match(link_id):
            raise MappingError(f"{where}: criterion id {link_id!r} must match {LINK_ID.pattern}")
        if link_id in self.seen:
            raise MappingError(f"{where}: duplicate criterion id {link_id!r}")
        self.seen.add(link_id)
        here = f"criterion {link_id}"
        rule_keys = [k for k in RULE_KEYS if k in raw]
        unknown = set(raw) - COMMON_KEYS - set(RULE_KEYS)
        if unknown:
            raise MappingError(f"{here}: unknown keys {sorted(unknown)}")
        if len(rule_keys) != 1:
            raise MappingError(f"{here}: exactly one rule key of {list(RULE_KEYS)} required, got {rule_keys}")
        description = raw.get("text")
        if not isinstance(description, str) or not description.strip():
            raise MappingError(f"{here}: 'text' (the protocol wording) is required")
        return Criterion(
            link_id=link_id,
            description=description.strip(),
            rule=self.rule(rule_keys[0], raw[rule_keys[0]], here),
            exclude=_bool(raw.get("exclude", False), f"{here}.exclude"),
            note=raw.get("note"),
            machine_derived=_bool(raw.get("machine_derived", False), f"{here}.machine_derived"),
        )

    def rule(self, key: str, body: Any, here: str) -> Rule:
        where = f"{here}.{key}"
        if key in ("all_of", "any_of"):
            code = CombinationCode.ALL_OF if key == "all_of" else CombinationCode.ANY_OF
            return Combination(code, self.criteria(body, where))
        if key in ("at_least", "at_most"):
            spec = _map(body, where)
            code = CombinationCode.AT_LEAST if key == "at_least" else CombinationCode.AT_MOST
            return Combination(code, self.criteria(spec.get("of"), where), _int(spec.get("n"), f"{where}.n"))
        if key == "screening":
            if body is not True:
                raise MappingError(f"{where}: write 'screening: true'")
            return ScreeningConfirmation()
        if key == "not_computable":
            return self._not_computable(body, where)
        if key == "sex":
            sexes = [body] if isinstance(body, str) else _list(body, where)
            if not sexes or any(s not in ("female", "male") for s in sexes):
                raise MappingError(f"{where}: female and/or male")
            return SexRule(frozenset(sexes))
        spec = _map(body, where)
        parse = getattr(self, f"_{key}")
        try:
            rule: Rule = parse(spec, where)
        except (KeyError, TypeError, ValueError) as exc:
            raise MappingError(f"{where}: {exc!s}") from exc
        except MappingError as exc:
            if where in str(exc):
                raise
            raise MappingError(f"{where}: {exc}") from exc
        return rule

    def _not_computable(self, body: Any, where: str) -> NotComputable:
        """`not_computable: <reason>`, or `{reason, needs: [{label, codes, window_days}]}` when the
        criterion names the data that would settle it (a dataRequirement even though it stays unknown)."""
        spec: Mapping[str, Any] = {"reason": body} if isinstance(body, str) else _map(body, where)
        _only(spec, {"reason", "needs"}, where)
        reason = spec.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise MappingError(f"{where}: give the reason it cannot be computed")
        needs = []
        for index, raw in enumerate(_list(spec.get("needs", []), f"{where}.needs")):
            need = _map(raw, f"{where}.needs[{index}]")
            _only(need, {"label", "codes", "window_days"}, f"{where}.needs[{index}]")
            try:
                needs.append(
                    DataNeed(_str(need, "label"), _codes(need, where), self._window_or_default(need.get("window_days")))
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise MappingError(f"{where}.needs[{index}]: {exc!s}") from exc
        return NotComputable(reason.strip(), tuple(needs))

    def _age(self, spec: Mapping[str, Any], where: str) -> AgeRule:
        _only(spec, {"min", "max"}, where)
        low, high = spec.get("min"), spec.get("max")
        if low is None and high is None:
            raise MappingError(f"{where}: min and/or max years")
        return AgeRule(_opt_float(low), _opt_float(high))

    def _condition(self, spec: Mapping[str, Any], where: str) -> ConditionRule:
        _only(spec, {"label", "codes", "names", "history", "within_days", "except"}, where)
        return ConditionRule(
            label=_str(spec, "label"),
            codes=_codes(spec, where),
            include_resolved=_bool(spec.get("history", False), f"{where}.history"),
            within=_window(spec.get("within_days")),
            except_codes=_except_spec_codes(spec.get("except", []), f"{where}.except"),
        )

    def _stage(self, spec: Mapping[str, Any], where: str) -> StageRule:
        _only(spec, {"allowed"}, where)
        allowed = tuple(str(s) for s in _list(spec.get("allowed"), where))
        bad = [s for s in allowed if not STAGE.match(s)]
        if not allowed or bad:
            raise MappingError(f"{where}: stages must be AJCC groups like IIIB or IV, got {bad or allowed}")
        return StageRule(allowed)

    def _observation(self, spec: Mapping[str, Any], where: str) -> ObservationRule:
        keys = {
            "label",
            "codes",
            "op",
            "value",
            "unit",
            "uln",
            "lln",
            "window_days",
            "molar_mass",
            "room_air",
            "or_value",
        }
        _only(spec, keys, where)
        relative = [k for k in ("value", "uln", "lln") if k in spec]
        if len(relative) != 1:
            raise MappingError(f"{where}: exactly one of value, uln, lln")
        if relative[0] == "value" and "unit" not in spec:
            raise MappingError(f"{where}: 'unit' (UCUM, '1' for scores) is required with 'value'")
        return ObservationRule(
            label=_str(spec, "label"),
            codes=_codes(spec, where),
            comparator=Comparator(spec["op"]),
            value=float(spec[relative[0]]),
            window=self._window_or_default(spec.get("window_days")),
            unit=spec.get("unit"),
            relative_to=None if relative[0] == "value" else relative[0].upper(),
            molar_mass=_opt_float(spec.get("molar_mass")),
            room_air=_bool(spec.get("room_air", False), f"{where}.room_air"),
            or_value=_or_value(spec, where),
        )

    def _test(self, spec: Mapping[str, Any], where: str) -> TestRule:
        fields = {
            "label", "codes", "names", "except", "result", "window_days", "gene", "variant", "decides_alone",
            "positive_wins",
        }  # fmt: skip
        _only(spec, fields, where)
        expect = spec.get("result")
        if expect not in ("positive", "negative"):
            raise MappingError(f"{where}: result must be positive or negative")
        codes = _codes(spec, where, with_except=True)
        statuses = sorted(code for system, code in codes.exact if (system, code) in RECORDED_STATUS_CODES)
        if expect == "negative" and statuses:
            raise MappingError(
                f"{where}: {statuses} record a status, not a test result; it cannot read as a negative test"
            )
        decides_alone = _bool(spec.get("decides_alone", False), f"{where}.decides_alone")
        window = _window(spec.get("window_days"))
        if decides_alone and window is None:
            raise MappingError(f"{where}: a result that decides alone needs window_days")
        variant = spec.get("variant")
        if variant is not None and (spec.get("gene") is None or not PROTEIN_CHANGE.fullmatch(str(variant))):
            raise MappingError(f"{where}: variant must be a one-letter protein change (G12C, V600E) of the gene named")
        return TestRule(
            label=_str(spec, "label"),
            codes=codes,
            expect=expect,
            window=window,
            gene=spec.get("gene"),
            decides_alone=decides_alone,
            variant=variant,
            positive_wins=_bool(spec.get("positive_wins", False), f"{where}.positive_wins"),
        )

    def _medication(self, spec: Mapping[str, Any], where: str) -> MedicationRule:
        _only(
            spec,
            {"label", "codes", "names", "except", "within_days", "current", "min_doses", "systemic", "given_once"},
            where,
        )
        min_doses = spec.get("min_doses")
        return MedicationRule(
            label=_str(spec, "label"),
            codes=_codes(spec, where, with_except=True),
            within=_window(spec.get("within_days")),
            current=_bool(spec.get("current", False), f"{where}.current"),
            min_doses=None if min_doses is None else _int(min_doses, f"{where}.min_doses"),
            systemic=_bool(spec.get("systemic", False), f"{where}.systemic"),
            given_once=_bool(spec.get("given_once", False), f"{where}.given_once"),
        )

    def _procedure(self, spec: Mapping[str, Any], where: str) -> ProcedureRule:
        _only(spec, {"label", "codes", "names", "except", "within_days"}, where)
        return ProcedureRule(
            _str(spec, "label"), _codes(spec, where, with_except=True), _window(spec.get("within_days"))
        )

    def _creatinine_clearance(self, spec: Mapping[str, Any], where: str) -> CreatinineClearanceRule:
        _only(spec, {"op", "value", "window_days"}, where)
        return CreatinineClearanceRule(
            Comparator(spec["op"]), float(spec["value"]), self._window_or_default(spec.get("window_days"))
        )

    def _corticosteroid_dose(self, spec: Mapping[str, Any], where: str) -> CorticosteroidDoseRule:
        _only(spec, {"op", "prednisone_mg_per_day", "within_days"}, where)
        within = _window(spec.get("within_days"))
        if within is None:
            raise MappingError(f"{where}: within_days is required")
        return CorticosteroidDoseRule(Comparator(spec["op"]), float(spec["prednisone_mg_per_day"]), within)

    def _progression_after(self, spec: Mapping[str, Any], where: str) -> ProgressionAfterTherapyRule:
        _only(spec, {"label", "codes", "names", "except", "within_days"}, where)
        within = spec.get("within_days")
        return ProgressionAfterTherapyRule(
            _str(spec, "label"),
            _codes(spec, where, with_except=True),
            None if within is None else _int(within, f"{where}.within_days"),
        )

    def _window_or_default(self, days: Any) -> Window:
        return _window(days) or self.default_window


def parse_code_token(token: str) -> tuple[str, str]:
    """'loinc:751-8' → (http://loinc.org, 751-8); a full system URL before '|' is accepted too."""
    if "|" in token:
        system, _, code = token.partition("|")
    else:
        alias, sep, code = token.partition(":")
        if not sep or alias not in SYSTEM_ALIASES:
            raise MappingError(f"code {token!r}: write alias:code with alias in {sorted(SYSTEM_ALIASES)}")
        system = SYSTEM_ALIASES[alias]
    if not system or not code:
        raise MappingError(f"code {token!r} has an empty system or code")
    return system, code


def _codes(spec: Mapping[str, Any], where: str, required: bool = True, with_except: bool = False) -> CodeSet:
    """codes + names; `with_except` (medication, procedure, test, progression rules): `except` lists the
    class members and names that do not mean the criterion (`except: {codes, names}` or a list of codes).
    A condition rule keeps its exemptions on the rule instead (ConditionRule.except_codes)."""
    raw_except = spec.get("except")
    excluded = _except_spec_codes(raw_except, f"{where}.except") if with_except and raw_except is not None else None
    tokens = _list(spec.get("codes", []), f"{where}.codes")
    names = tuple(str(n).lower() for n in _list(spec.get("names", []), f"{where}.names"))
    exact: set[tuple[str, str]] = set()
    prefixes: list[tuple[str, str]] = []
    for token in tokens:
        system, code = parse_code_token(str(token))
        (prefixes.append((system, code)) if system in PREFIX_SYSTEMS else exact.add((system, code)))
    codes = CodeSet(frozenset(exact), tuple(prefixes), names, excluded)
    if required and not codes:
        raise MappingError(f"{where}: codes and/or names are required")
    return codes


def _except_spec_codes(raw: Any, where: str) -> CodeSet:
    """`except: [codes]` or `except: {codes: [...], names: [...]}`."""
    spec: Mapping[str, Any] = {"codes": raw} if isinstance(raw, list) else _map(raw, where)
    _only(spec, {"codes", "names"}, where)
    return _codes(spec, where, required=False)


def _window(days: Any) -> Window | None:
    if days is None:
        return None
    value = int(days)
    if value <= 0:
        raise ValueError(f"window of {days} days must be positive")
    return Window(value)


def _only(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MappingError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise MappingError(f"{where}: expected a list")
    return value


def _str(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"'{key}' must be a non-empty string")
    return value.strip()


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise MappingError(f"{where}: expected true or false")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{where}: expected a whole number, got {value!r}")
    return value


def _or_value(spec: Mapping[str, Any], where: str) -> tuple[float, str] | None:
    """`or_value: {value, unit}`: a second threshold in another unit, only beside a `value` threshold."""
    raw = spec.get("or_value")
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"value", "unit"} or "value" not in spec:
        raise MappingError(f"{where}.or_value: {{value, unit}} beside a 'value' threshold")
    return float(raw["value"]), str(raw["unit"])


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
