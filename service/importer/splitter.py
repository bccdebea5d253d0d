"""ClinicalTrials.gov eligibilityCriteria (markdown-ish text) → inclusion/exclusion items with stable ids.

Rule: split on the list structure the registry text actually has (bullets, numbers, letters,
nesting by indentation, "Inclusion/Exclusion Criteria" headers in any case) and keep each item's
wording verbatim (markdown escapes such as `\\>` removed). Anything that changes how an item may be
read (a cohort-only sub-heading, "except:" lists, a standalone OR) is recorded, never guessed away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>^|~=])")
MARKER = re.compile(
    r"^(?P<indent>[ \t]*)"
    r"(?P<marker>[*•·▪◦]|-(?=\s*\S)|\d{1,2}[.)](?!\d)|\(\d{1,2}\)|[a-zA-Z][.)](?=\s)|\([a-z]{1,4}\)"
    r"|(?:i{1,3}|iv|vi{0,3}|ix|x)[.)](?=\s))"
    r"[ \t]*(?P<rest>.*)$"
)
# A second, escaped number after a bullet ("* 2\\. Males or females"): part of the marker.
INNER_NUMBER = re.compile(r"^\d{1,2}\\?[.)]\s+")
HEADER = re.compile(
    r"^(?:(?:key|main|major|general|other|additional|specific|further)\s+)?"
    r"(?P<kind>inclusion|exclusion|eligibility)(?:\s+criteria)?\b(?P<rest>.*)$",
    re.IGNORECASE,
)
SECTION_WORDS = re.compile(r"\b(inclusion|exclusion)\s+criteria\b", re.IGNORECASE)
EXCLUDED_INTRO = re.compile(r"\b(will be|are|is) (excluded|not eligible)\b|\bexcluded from\b", re.IGNORECASE)
INCLUDED_INTRO = re.compile(r"\b(eligible|included) (to|in|for)\b|\bmust meet\b", re.IGNORECASE)
# Words in a (sub-)heading that restrict the items below it to some participants.
QUALIFIER = re.compile(
    r"\bspecific\b|\bfor (?!participation|the study|this study|inclusion|enrol)|\bonly\b(?! if)|\bcohorts?\b"
    r"|\bparts?\s+[0-9A-Z]|\barms?\s+[0-9A-Z]|\bphase\s+(1|2|i)|\bexpansion\b|\bescalation\b"
    r"|\b(participants|patients|subjects)\b(?! (must|will|are|who meet))",
    re.IGNORECASE,
)
NOTE_ONLY = re.compile(
    r"criteria (may |could )?apply|^further criteria|not intended to contain all|^<!--.*-->$", re.IGNORECASE
)
TRAILING_OR = re.compile(r"[\s,;]or$|\bOR$")
ALTERNATIVE_LINE = re.compile(r"^(or|and/or)$", re.IGNORECASE)


@dataclass
class Item:
    """One criterion as written: its own wording and its sub-items."""

    text: str
    exclusion: bool
    indent: int
    qualifier: str | None = None  # a heading or context that restricts who the item applies to
    children: list[Item] = field(default_factory=list)
    raw_lines: list[str] = field(default_factory=list)
    alternatives: bool = False  # a standalone OR among the sub-items: their grouping is unclear
    or_sibling: bool = False  # joined to a neighbour by "or": not a criterion on its own
    link_id: str = ""
    kind: str = ""  # marker style: bullet, number., number), letter, roman


@dataclass
class Split:
    items: list[Item]
    dropped: list[str]  # headers, intros and notes that are not criteria

    def walk(self) -> list[Item]:
        out: list[Item] = []

        def visit(item: Item) -> None:
            out.append(item)
            for child in item.children:
                visit(child)

        for item in self.items:
            visit(item)
        return out


def unescape(text: str) -> str:
    return MD_ESCAPE.sub(r"\1", text)


def split_criteria(text: str) -> Split:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    top: list[Item] = []
    dropped: list[str] = []
    stack: list[Item] = []
    exclusion = False
    section_qualifier: str | None = None
    heading_qualifier: str | None = None
    next_item_qualifier: str | None = None  # an indented heading labels the one item below it
    previous_blank = True
    for raw in lines:
        if not raw.strip():
            previous_blank = True
            continue
        marker = MARKER.match(raw)
        content = unescape(INNER_NUMBER.sub("", marker.group("rest")) if marker else raw.strip()).strip()
        header = _header(content)
        if header is not None:
            kind, qualifier = header
            if kind != "eligibility":
                exclusion = kind == "exclusion"
            section_qualifier, heading_qualifier = qualifier, None
            stack.clear()
            dropped.append(content)
            previous_blank = False
            continue
        if not content or (marker is None and NOTE_ONLY.search(content)):
            dropped.append(content)
            previous_blank = False
            continue
        if marker is None and ALTERNATIVE_LINE.match(content):
            if stack:
                if len(stack) > 1:
                    stack[-2].alternatives = True
                else:
                    stack[-1].or_sibling = True
                stack[-1].raw_lines.append(content)
                stack[-1].text = f"{stack[-1].text}\n{content}"
            previous_blank = False
            continue
        if marker is None and _is_heading(content, previous_blank, raw):
            qualifier = content if QUALIFIER.search(content) else None
            if raw.startswith((" ", "\t")):
                # An indented heading inside a list ("   Female participants:" above item 7, "Prior/
                # Concomitant Therapy") labels the next item and closes nothing.
                next_item_qualifier = qualifier
            else:
                heading_qualifier = qualifier
                stack.clear()
            dropped.append(content)
            previous_blank = False
            continue
        if marker is None:
            if stack:
                target = stack[-1]
                joiner = "\n" if previous_blank else " "
                target.text = f"{target.text}{joiner}{content}" if target.text else content
                target.raw_lines.append(content)
            else:
                qualifier = section_qualifier or next_item_qualifier or heading_qualifier
                next_item_qualifier = None
                item = Item(content, exclusion, 0, qualifier, raw_lines=[content])
                top.append(item)
                stack[:] = [item]
            previous_blank = False
            continue
        indent = len(marker.group("indent").expandtabs(4))
        kind = _marker_kind(marker.group("marker"))
        if stack and stack[-1].indent == indent and stack[-1].text.endswith((":", "：")) and kind != stack[-1].kind:
            indent += 1  # "9. ... must be met:" then "1)ANC ..." at the same indent: a sub-list
        while stack and stack[-1].indent >= indent:
            stack.pop()
        qualifier = section_qualifier or next_item_qualifier or heading_qualifier
        next_item_qualifier = None
        item = Item(content, exclusion, indent, qualifier, raw_lines=[content])
        item.kind = kind
        if stack:
            stack[-1].children.append(item)
        else:
            top.append(item)
        stack.append(item)
        previous_blank = False
    _mark_or_siblings(top)
    _number(top)
    return Split(top, dropped)


def _header(content: str) -> tuple[str, str | None] | None:
    """('inclusion'|'exclusion'|'eligibility', qualifier) when the line opens a section."""
    words = content.rstrip(":：").strip()
    match = HEADER.match(words)
    if match and len(words) <= 160:
        rest = match.group("rest").strip(" :：-")
        if match.group("kind").lower() != "eligibility" or not rest:
            return match.group("kind").lower(), (words if rest and QUALIFIER.search(rest) else None)
    if content.endswith((":", "：")) and len(content) <= 200:
        section = SECTION_WORDS.search(content)
        if section:
            qualifier = content if re.search(r"\bspecific\b|\bfor (?!participation)", content, re.I) else None
            return section.group(1).lower(), qualifier
        if re.search(r"\bcriteri(a|on)\b", content, re.I):
            if EXCLUDED_INTRO.search(content):
                return "exclusion", None
            if INCLUDED_INTRO.search(content) and re.search(r"\bfollowing\b", content, re.I):
                return "inclusion", None
    return None


def _marker_kind(marker: str) -> str:
    if marker[0].isdigit() or marker.startswith("("):
        return "number" + marker[-1]
    if marker[0].isalpha():
        return "letter"
    return "bullet"


def _is_heading(content: str, previous_blank: bool, raw: str) -> bool:
    words = content.split()
    if content.endswith((":", "：")) and len(words) <= 10 and not content.lower().startswith("note"):
        return True
    return previous_blank and len(words) <= 6 and not re.search(r"[.;,]$", content) and content[0].isupper()


def _mark_or_siblings(items: list[Item]) -> None:
    """ "A; or" + "B": neither is required on its own."""
    joined = [bool(TRAILING_OR.search(item.text)) or item.or_sibling for item in items]
    for n, item in enumerate(items):
        if joined[n] or (n > 0 and joined[n - 1]):
            item.or_sibling = True
        _mark_or_siblings(item.children)


def _number(top: list[Item]) -> None:
    counters = {False: 0, True: 0}
    for item in top:
        counters[item.exclusion] += 1
        prefix = "exc" if item.exclusion else "inc"
        _assign(item, f"{prefix}-{counters[item.exclusion]}")


def _assign(item: Item, link_id: str) -> None:
    item.link_id = link_id
    for n, child in enumerate(item.children, start=1):
        _assign(child, f"{link_id}.{n}")
