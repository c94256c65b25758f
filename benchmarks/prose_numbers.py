"""Traces every number written in the prose of README.md and docs/*.md to the committed result
files (``benchmarks/results/**``), the prose counterpart of benchmarks/tables.py:

    python benchmarks/prose_numbers.py                 # report: per file, traced / untraced
    python benchmarks/prose_numbers.py --untraced      # also list every untraced number
    python benchmarks/prose_numbers.py --check         # exit 1 on an untraced number that is not
                                                       # in docs/prose_numbers_exceptions.txt,
                                                       # or on an exception that is gone

What is prose. Everything of README.md and docs/*.md except: generated tables
(``<!-- table:NAME -->`` ... ``<!-- /table:NAME -->``), fenced code, inline code spans, HTML
comments, link targets, headings' section numbering and ordered-list markers. Hand-written
tables are prose (one unit per row). In docs/claims.md the "source" and "claim (English)"
columns quote the four seed documents, not our results, so they are not extracted.

What is a number. A decimal literal with an optional sign (``-``, ``−``, ``+``), thousands
separators (``1,827``), a decimal part, scientific notation (``3e-4``) and a unit: ``K``/``k``
(x1e3), ``M`` (x1e6), ``G``/``B`` (x1e9), ``KB``/``MB``/``GB`` and the ``KiB`` family (the
same decimal scale: docs write MB loosely), ``%``, ``x``/``×`` (a ratio), or a time unit
(``s``, ``ms``, ``min``, ``h``: compared as written); in a rate the unit is that of the
numerator (``1.48 MB/s`` is 1.48 M, ``737.9 TFLOP/s`` and ``0.84 MFLOP/byte`` likewise: such a
rate is not a path). Not numbers: a digit run touching a letter,
``_`` or ``-`` on its left or a letter on its right that is not a unit (``h100``, ``fp32``,
``transformer-30m``, ``e1d3``, ``2nd``), file names and paths, commit hashes, dates
(``2026-12-05``), issue and PR numbers (``#19``), section numbers (``§1.8``, ``S §1.10``),
version strings (``1.2.3``, ``torch 2.6``), times of day.

How a number is traced (first rule that holds):
1. **direct**: a numeric leaf of a result file rounds to it at the precision shown (``1.827``
   is any value in [1.8265, 1.8275]; ``36.8 K`` any in [36750, 36850]; ``77%`` also the
   fraction 0.77; signs are ignored: a gap of ``+0.133`` may be stored as 0.133). The files
   searched are, in order, those the number's unit cites (paragraph, table row or list item; a
   hand-written table row also cites what its caption cites, the paragraph or list item that
   ends at most one blank line above the table),
   those its section cites (between two headings, generated tables' file notes included), and
   then every result file (``global``). Before all of them comes the number's own citation: a
   parenthesis right after the number (at most one word between, such as a unit) that opens
   with a result file, ``2.010 (`equal_time_30m/bsfin_en_babylon.json`)`` or ``1.97 bpb
   (`a.json`, 30 min)``, or numbers joined by slashes before it, ``1.809 / 1.821 (`a.json`)``;
   the files named in that parenthesis are the number's first scope, so a
   number in a table row (one unit) or a paragraph that cites several files can be traced to
   its own file, guarded against chance in that file alone. JSON leaves are numbers and the numbers inside strings;
   .log/.txt/.md result files give every number in their text. A number shown in a generated
   table of the same doc is direct too (tables.py computes it from the files, e.g. a mean, and
   its --check keeps it current). Every match must be specific: at most 10% of the number's
   neighbours at the shown precision (its last digit moved by 2, 3, 5, ... 29) may match the
   same files, or the match is by chance (a file with a dense curve matches any 4-digit bpb).
   "The same files" is every file of the scope searched, not only the one that matched: a unit
   or section citing several files is searched in all of them, so a neighbour matching any of
   them would have been traced as well (a number specific in one file of a section that also
   cites a dense curve is weak; cite its file in its own paragraph, row or list item).
   Summary leaves are tried before series (a leaf inside a list of more than 16 elements).
2. **derived**: the difference, the ratio (``1.13x``) or the percentage change of two numbers
   that are either summary leaves of the same key name (the last key of their JSON path, so a
   ratio compares like with like) in the cited files, or numbers of the same unit of prose that
   are themselves traced directly. Tried only for a number no leaf of its cited files (unit or
   section, series included) gives and no rule 1 traces (direct is preferred: ``8.9%`` that a
   dense file of its row matches is weak, not a % change that happens to round to it). Steps:
   the number's own citation (if any), the unit, then the section; the pool of a step is every such difference, ratio and % change
   of its files' leaves (all keys, all three operations) and of the unit's traced numbers,
   the same pool for the number and for its neighbours, as for a direct match. The guard is
   tighter: such a pool is dense and clumped (N leaves give N^2 ratios), so the rate is
   sampled at every neighbour from 2 to 100 steps of the last digit either way (20 probes
   cannot tell 5% from 30%), and at most 5% of them may be derivable (the derivation is a
   second trial after the direct one, so it gets half of the 10% bound). A real ratio of two
   cited bytes/s passes; a ratio of two ``bytes_seen`` that rounds to a bpb does not, unless the
   pool is so sparse that its neighbours are truly not derivable (then cite the real source).
3. **weak**: a match that is not specific, or a global match with fewer than 3 significant
   digits (``77%``, ``0.91``): such a number would match even if mistyped, so it is not counted
   as traced; it is reported separately and not checked.
4. **short** (out of scope): one significant digit (``2``, ``0.5``, ``400``): too short to trace.
5. otherwise **untraced**: it must be listed, with a reason, in
   docs/prose_numbers_exceptions.txt (``file | number | reason``, one line per file and number
   as written), or --check fails.
"""
import argparse
from dataclasses import dataclass, field
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "benchmarks" / "results"
EXCEPTIONS = ROOT / "docs" / "prose_numbers_exceptions.txt"
RESULT_TEXT = (".log", ".txt", ".md")

GENERATED = re.compile(r"<!-- table:(\w+) -->\n(.*?)<!-- /table:\1 -->", re.S)
FENCE = re.compile(r"^ {0,3}```.*?^ {0,3}```[^\n]*$", re.S | re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
URL = re.compile(r"https?://\S+")
PATH = re.compile(r"(?<![\w])(?![KMGTP]?(?:i?B|FLOPs?)/(?:s|byte)\b)(?:\.\./|\./)?(?:[\w.+{},*-]+/)+(?:[\w.+{},*-]+)?|"
                  r"\b[\w.+{},*-]+\.(?:json|jsonl|log|txt|md|png|py|sh|yaml|toml|csv|bin|pt|safetensors)\b")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b\d{1,2}:\d{2}(?::\d{2})?\b")
ISSUE = re.compile(r"(?:#|PR\s?|issue\s)\d+\b", re.I)
SECTION = re.compile(r"§\s?\d+(?:\.\d+)*(?:\s?(?:item|row)\s\d+)?|\b(?:section|step)s?\s\d+(?:\.\d+)+")
VERSION = re.compile(r"\bv?\d+\.\d+\.\d+(?:\.\w+)*\b|\b(?:python|torch|pytorch|cuda|triton|numpy|transformers|"
                     r"flash[- ]attn|fla|lm[- ]eval|datasets|sm|compute capability|version|release|"
                     r"cudnn|nccl|driver)[ _]?\d+(?:\.\d+)*", re.I)
HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b|\b\d{7,40}\b")
CITATION = re.compile(r"arXiv:?\s?\d+\.\d+|\b[A-Z][a-z]+(?: et al\.)?,? (?:19|20)\d\d\b")
HEADING = re.compile(r"^(#+)\s*(?:\d+(?:\.\d+)*\.?\s)?(.*)$")
LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+")
# a number's own citation: right after it (at most one word between, e.g. a unit: "bpb", "MB/s"),
# a parenthesis that opens with a result file's path, in backticks or not; a line break of the
# same paragraph may fall in between (prose is wrapped)
OWN_CITE = re.compile(r"(?:\s+[A-Za-z][\w/]*)?\s*\((?=\s*`?(?:\.\./|\./)?(?:[\w.+{},*-]+/)*"
                      r"[\w.+{},*-]+\.(?:json|log|txt|md)\b)")
SLASHED = re.compile(r"\s*/\s*[-−+]?\d[\d,.]*(?:[eE][-+]?\d+)?(?![\w.])")
NUMBER = re.compile(
    r"(?P<sign>[-−+])?(?P<num>\d+(?:\.\d+)?[eE][-+]?\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<unit>\s?(?:[KMGTP]FLOPs?|KiB|MiB|GiB|KB|MB|GB|TB|K|k|M|G|B|%|×|x|ms|µs|us|min|s|h)(?![A-Za-z0-9]))?")
SCALE = {"K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9,
         "TB": 1e12, "KiB": 1e3, "MiB": 1e6, "GiB": 1e9, "KFLOP": 1e3, "MFLOP": 1e6, "GFLOP": 1e9,
         "TFLOP": 1e12, "PFLOP": 1e15}
EPS = 1e-9


@dataclass
class Number:
    """A number written in the prose of a doc."""
    doc: str
    line: int
    text: str  # as written, sign and unit included
    value: float  # magnitude with the unit's scale, sign dropped (a % keeps its percent value)
    half: float  # half the last shown digit, on the value's scale
    unit: str
    sig: int  # significant digits
    unit_cites: list[str] = field(default_factory=list)
    own_cites: list[str] = field(default_factory=list)  # a citation in parentheses right after it
    section_cites: list[str] = field(default_factory=list)
    table_values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the doc's generated tables
    context: str = ""
    status: str = ""
    how: str = ""


def _blank(m: re.Match) -> str:
    """A match replaced by spaces (newlines kept), so offsets and line numbers survive."""
    return re.sub(r"[^\n]", " ", m.group(0))


def sig_digits(num: str) -> int:
    """Significant digits of a written number: '1,827' 4, '0.050' 2, '400' 1, '1.0e6' 2."""
    mant = re.split(r"[eE]", num)[0].replace(",", "")
    digits = mant.replace(".", "").lstrip("0")
    if "." not in mant:
        digits = digits.rstrip("0")
    return max(len(digits), 1 if mant.strip("0.") == "" else len(digits))


def parse_number(num: str, unit: str) -> tuple[float, float, int]:
    """(value, half a unit in the last shown place, significant digits) of a written number."""
    mant, _, exp = num.replace(",", "").lower().partition("e")
    dec = len(mant.split(".")[1]) if "." in mant else 0
    scale = SCALE.get(unit, 1.0) * 10 ** int(exp or 0)
    value = float(mant) * scale
    return value, 0.5 * 10 ** -dec * scale + EPS * max(1.0, value), sig_digits(num)


# -- reading the docs -----------------------------------------------------------------------

def _mask(text: str) -> str:
    """The doc with everything that is not prose blanked out (same length, same lines)."""
    for rx in (GENERATED, FENCE, COMMENT, CODE, LINK_TARGET, URL, PATH, DATE, HASH, ISSUE,
               SECTION, VERSION, CITATION):
        text = rx.sub(_blank, text)
    return text


def _cites(raw: str, files: list[str]) -> list[str]:
    """Result files (of files) a piece of raw markdown names, relative to benchmarks/results."""
    out = []
    for m in re.finditer(r"(?:[\w.+{},*-]+/)*[\w.+{},*-]+(?:\.(?:json|log|txt|md)\b|/)", raw):
        for name in _expand(m.group(0)):
            out += [f for f in _resolve(name, files) if f not in out]
    return out


def _expand(name: str) -> list[str]:
    """Shell brace expansion of one path: 'a_{x,y}.json' -> ['a_x.json', 'a_y.json']."""
    m = re.search(r"\{([^{}]*)\}", name)
    if not m:
        return [name]
    return [e for alt in m.group(1).split(",") for e in _expand(name[:m.start()] + alt + name[m.end():])]


_FILES: list[str] = []


def _result_files() -> list[str]:
    if not _FILES:
        _FILES.extend(sorted(p.relative_to(RES).as_posix() for p in RES.rglob("*")
                             if p.is_file() and p.suffix in (".json", *RESULT_TEXT)))
    return _FILES


def _resolve(name: str, files: list[str]) -> list[str]:
    """The result files a cited name means: the file, the files under a cited folder, or the
    files whose path ends with the name (docs often drop the ``benchmarks/results/`` prefix)."""
    name = name.removeprefix("../").removeprefix("./")
    if "results/" in name:
        name = name.split("results/", 1)[1]
    name = name.strip("/")
    if not name or name in (".", ".."):
        return []
    return [f for f in files if f == name or f.endswith("/" + name) or
            f.startswith(name + "/") or f"/{name}/" in f"/{f}"]


def _claims_columns(line: str) -> str:
    """A docs/claims.md table row with its source and claim columns (seed quotes) blanked."""
    cells = line.split("|")
    if len(cells) < 8 or not re.match(r"\s*[A-Z]\d+", cells[1] or ""):
        return line
    for i in (2, 3):
        cells[i] = " " * len(cells[i])
    return "|".join(cells)


def _own_cites(raw: str, end: int, files: list[str]) -> list[str]:
    """The result files of a number's own citation: the parenthesis right after the number that
    ends at raw[end] (see OWN_CITE), up to its matching close; [] if there is none. Numbers
    joined by slashes (``1.809 / 1.821 (`a.json`)``) share the citation that follows the last."""
    while (g := SLASHED.match(raw, end)):
        end = g.end()
    m = OWN_CITE.match(raw, end)
    if not m:
        return []
    depth, j = 1, m.end()
    while j < len(raw) and depth:
        depth += {"(": 1, ")": -1}.get(raw[j], 0)
        j += 1
    return _cites(raw[m.end():j], files)


def _caption(unit: list[int], raw: list[str], unit_of: dict[int, list[int]]) -> list[int] | None:
    """The caption of a hand-written table row: the paragraph or list item that ends at most
    one blank line above the table's first row (None for a unit that is not a table row)."""
    i = unit[0]
    if not raw[i].lstrip().startswith("|"):
        return None
    while i > 0 and raw[i - 1].lstrip().startswith("|"):
        i -= 1
    i -= 1
    if i >= 0 and not raw[i].strip():
        i -= 1
    if i < 0 or not raw[i].strip() or raw[i].lstrip().startswith(("|", "#", "```", "<!--")) or i not in unit_of:
        return None
    return unit_of[i]


def extract(doc: str, text: str, files: list[str] | None = None) -> list[Number]:
    """Every prose number of one doc, with the result files its unit and section cite.

    Args:
        doc: the doc's path relative to the repository (for the report).
        text: the doc's markdown.
        files: the result files a citation may name (default: those in benchmarks/results).
    Returns:
        the numbers in reading order.
    """
    files = _result_files() if files is None else files
    masked = _mask(text)
    tables = np.array(sorted({abs(parse_number(m.group("num"), (m.group("unit") or "").strip())[0])
                              for g in GENERATED.finditer(text)
                              for m in NUMBER.finditer(_mask(CODE.sub(_blank, g.group(2))))}))
    raw_lines, lines = text.split("\n"), masked.split("\n")
    if doc.endswith("claims.md"):
        lines = [_claims_columns(l) for l in lines]
    # units: a table row, a list item (with its continuation lines) or a paragraph
    units, cur, sections, sec, in_fence = [], None, [], 0, False
    for i, raw in enumerate(raw_lines):
        fence = bool(re.match(r"^ {0,3}```", raw))
        in_fence ^= fence
        if not in_fence and not fence and HEADING.match(raw):
            sec += 1
            lines[i] = re.sub(r"^#+\s*\d+(?:\.\d+)*\.?\s", lambda m: " " * len(m.group(0)), lines[i])
            units.append([i])
            cur = None
        elif in_fence or fence or not raw.strip():
            cur = None
        elif raw.lstrip().startswith("|"):
            units.append([i])
            cur = None
        elif LIST_ITEM.match(raw) or cur is None:
            lines[i] = LIST_ITEM.sub(lambda m: " " * len(m.group(0)), lines[i], count=1)
            cur = [i]
            units.append(cur)
        else:
            cur.append(i)
        sections.append(sec)
    sec_cites: dict[int, list[str]] = {}
    for i, raw in enumerate(raw_lines):
        sec_cites.setdefault(sections[i], [])
        sec_cites[sections[i]] += [f for f in _cites(raw, files) if f not in sec_cites[sections[i]]]
    out = []
    unit_of = {i: u for u in units for i in u}
    for u in units:
        cites = _cites("\n".join(raw_lines[i] for i in u), files)
        caption = _caption(u, raw_lines, unit_of)
        if caption:
            cites += [f for f in _cites("\n".join(raw_lines[i] for i in caption), files) if f not in cites]
        def rest_of_unit(i, u=u):
            # line i and the unit's lines after it, so a citation after a line break is seen
            return "\n".join([raw_lines[i]] + [raw_lines[j] for j in u if j > i])
        for i in u:
            for m in NUMBER.finditer(lines[i]):
                s, e = m.start(), m.end()
                left = lines[i][s - 1] if s else " "
                if left.isalnum() or left in "_.,/":
                    continue  # part of an identifier, a version or a list of digits
                if m.group("sign") == "-" and s and lines[i][s - 1].isalnum():
                    continue
                if m.group("sign") is None and left == "-" and s > 1 and (lines[i][s - 2].isalpha() or lines[i][s - 2] in "_"):
                    continue  # transformer-30m, top-5
                right = lines[i][e] if e < len(lines[i]) else " "
                if right.isalpha() or right == "_" or (right == "." and e + 1 < len(lines[i]) and lines[i][e + 1].isdigit()):
                    continue
                unit = (m.group("unit") or "").strip()
                unit = unit.removesuffix("s") if "FLOP" in unit else unit
                value, half, sig = parse_number(m.group("num"), unit)
                out.append(Number(doc=doc, line=i + 1, text=m.group(0).strip(), value=abs(value), half=half,
                                  unit=unit, sig=sig, unit_cites=cites, section_cites=sec_cites[sections[i]], table_values=tables,
                                  own_cites=_own_cites(rest_of_unit(i), e, files), context=raw_lines[i].strip()[:160]))
    return out


# -- reading the result files ---------------------------------------------------------------

PROBES = np.array([0, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, -2, -3, -5, -7, -11, -13, -17, -19, -23, -29])
CHANCE = 0.1  # a match is by chance when more than this share of the neighbours match too
# a derivation's neighbours: every last-digit step from 2 to 100 either way. A pool of pairwise
# differences and ratios is dense and clumped, and the 20 PROBES cannot tell a rate of 5% from
# one of 30% (2 of 20 hit either way); 198 probes cost one searchsorted more
DERIVED_CHANCE = CHANCE / 2  # a derivation is a second trial after the direct one: half the bound
DERIVED_PROBES = np.array([0, *range(2, 101), *range(-2, -101, -1)])
SERIES = 16  # a leaf inside a list longer than this is part of a series (a curve, a log)


@dataclass
class Leaves:
    """Every number of the committed result files: per file, (value, key name, in a series)."""
    by_file: dict[str, list[tuple[float, str, bool]]]
    _pools: dict = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path = RES) -> "Leaves":
        by_file = {}
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and p.suffix == ".json":
                by_file[rel] = list(_json_leaves(json.loads(p.read_text()), "", False))
            elif p.is_file() and p.suffix in RESULT_TEXT:
                by_file[rel] = [(v, "", True) for v in _text_numbers(p.read_text(errors="replace"))]
        return cls(by_file)

    @classmethod
    def of(cls, objects: dict[str, object]) -> "Leaves":
        """Leaves of in-memory JSON objects, {path relative to benchmarks/results: object}."""
        return cls({rel: list(_json_leaves(x, "", False)) for rel, x in objects.items()})

    def pool(self, files: tuple[str, ...] | None, series: bool) -> tuple[np.ndarray, list[str]]:
        """Sorted values of these files (None: every file), series leaves only if series, and
        the file of each value."""
        if (files, series) not in self._pools:
            pairs = sorted((v, f) for f in (self.by_file if files is None else files)
                           for v, _, s in self.by_file.get(f, []) if series or not s)
            self._pools[files, series] = (np.array([v for v, _ in pairs], dtype=float), [f for _, f in pairs])
        return self._pools[files, series]

    def keyed(self, files: tuple[str, ...], series: bool) -> "Keyed":
        """The distinct positive JSON leaves of these files, with their key names."""
        if (files, series, "k") not in self._pools:
            out: dict[str, set] = {}
            for f in files:
                for v, k, s in self.by_file.get(f, []):
                    if k and v > 0 and (series or not s):
                        out.setdefault(k, set()).add(v)
            self._pools[files, series, "k"] = Keyed.of(out)
        return self._pools[files, series, "k"]


@dataclass
class Keyed:
    """Values grouped by key name, sorted by (key, value) and searchable in one array: a value
    v of key i is stored as ``i * 2000 + log(v)`` (log keeps the order; 2000 exceeds the span
    of log over doubles), so one searchsorted finds a value range within its own key."""
    values: np.ndarray
    kid: np.ndarray
    names: list[str]
    keys: np.ndarray

    @classmethod
    def of(cls, by_key: dict[str, set]) -> "Keyed":
        names = sorted(k for k, vs in by_key.items() if len(vs) > 1)
        pairs = [(i, v) for i, k in enumerate(names) for v in sorted(by_key[k])]
        values = np.array([v for _, v in pairs], dtype=float)
        kid = np.array([i for i, _ in pairs], dtype=float)
        return cls(values, kid, names, _encode(kid, values))

    def search(self, x: np.ndarray, side: str) -> np.ndarray:
        """Per column j, where value x[:, j] of key kid[j] sorts into the (key, value) order."""
        return np.searchsorted(self.keys, _encode(self.kid, x), side)


def _encode(kid: np.ndarray, x: np.ndarray) -> np.ndarray:
    return kid * 2000 + np.log(np.maximum(x, 1e-300))


def _json_leaves(x, key: str, series: bool):
    if isinstance(x, bool) or x is None:
        return
    if isinstance(x, (int, float)):
        if math.isfinite(x):
            yield abs(float(x)), key, series
    elif isinstance(x, str):
        for v in _text_numbers(x):
            yield v, "", series
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _json_leaves(v, str(k), series)
    elif isinstance(x, list):
        for v in x:
            yield from _json_leaves(v, key, series or len(x) > SERIES)


def _text_numbers(s: str) -> list[float]:
    out = []
    for m in re.finditer(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?", s):
        try:
            out.append(float(m.group(0).replace(",", "")))
        except ValueError:
            pass
    return out


def _specific(hits: np.ndarray) -> bool:
    """hits[0]: the number matches; hits[1:]: its neighbours (+-2, 3, 5, ... steps of the last
    shown digit) match. Specific: it matches and at most CHANCE of the neighbours do."""
    return bool(hits[0]) and hits[1:].mean() <= CHANCE


def _centres(n: Number, probes: np.ndarray = PROBES) -> np.ndarray:
    return n.value + probes * 2 * n.half


def _scales(n: Number) -> list[float]:
    """Factors from n's value to the leaves it may equal: itself; a percentage as a fraction;
    a number with a unit also as written (a file may store GiB or M bytes/s) and, for bytes,
    binary units (GiB = 2**30)."""
    if n.unit == "%":
        return [1.0, 0.01]
    scale = SCALE.get(n.unit, 1.0)
    out = [1.0] if scale == 1.0 else [1.0, 1 / scale]
    if n.unit.endswith("B") and n.unit != "B":
        out.append(1024 ** ("KMGT".index(n.unit[0]) + 1) / scale)
    return out


def direct_hits(n: Number, vs: np.ndarray) -> np.ndarray:
    """Whether some value of sorted vs rounds to n, and to each of its neighbours."""
    c, hits = _centres(n), np.zeros(len(PROBES), bool)
    for scale in _scales(n):
        lo = np.searchsorted(vs, (c - n.half) * scale, "left")
        hits |= np.searchsorted(vs, (c + n.half) * scale, "right") > lo
    return hits & (c > 0)


def _ops(n: Number) -> list[str]:
    if n.unit in ("x", "×"):
        return ["ratio"]
    if n.unit == "%":
        return ["% change"]
    return ["difference", "ratio"] if n.value > 1 else ["difference"]


def _bounds(op: str, a: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """The interval of b with op(a, b) in [lo, hi], per a (rows: centres, columns: a)."""
    lo, hi = np.maximum(lo, EPS)[:, None], hi[:, None]
    if op == "difference":
        return a - hi, a - lo
    if op == "ratio":
        return a / hi, a / lo
    return a / (1 + hi / 100), a / (1 + lo / 100)  # a is b grown by the percentage


def derived_hits(n: Number, k: Keyed, probe: bool = True) -> tuple[np.ndarray, str]:
    """Whether two values of the same key give n (and each neighbour, if probe) by a
    difference, a ratio or a percentage change, and how n is given (op, key, the two values)."""
    c = _centres(n, DERIVED_PROBES) if probe else np.array([n.value])
    hits, how = np.zeros(len(c), bool), ""
    if len(k.values) < 2:
        return hits, how
    for op in _ops(n):
        blo, bhi = _bounds(op, k.values, c - n.half, c + n.half)
        count = k.search(bhi, "right") - k.search(blo, "left")
        count -= (blo <= k.values) & (k.values <= bhi)  # b is not a
        got = (count > 0).any(axis=1)
        if got[0] and not how:
            j = int(np.argmax(count[0] > 0))
            lo, hi = int(k.search(blo[:1], "left")[0, j]), int(k.search(bhi[:1], "right")[0, j])
            b = next((v for v in k.values[lo:hi] if v != k.values[j]), k.values[lo])
            how = f"{op} of {k.values[j]:g} and {b:g} ({k.names[int(k.kid[j])]})"
        hits |= got
    if probe:
        hits &= c > 0
    return hits, how


def derived(n: Number, leaves: Leaves, files: list[str], peers: set[float]) -> tuple[bool, str]:
    """(n is specifically derived at one step, how). The step's pool is every difference, ratio
    and percentage change of two summary leaves of one key of files, and of two of peers (the
    unit's directly traced numbers); the guard is that of a direct match over the whole pool:
    n is derivable from it, and at most DERIVED_CHANCE of its neighbours (DERIVED_PROBES) are
    derivable from it too."""
    pools = ((leaves.keyed(tuple(files), False), ""), (Keyed.of({"prose": peers}), "prose: "))
    if not any(derived_hits(n, k, probe=False)[0][0] for k, _ in pools):
        return False, ""  # the usual case, 20 times cheaper than probing the neighbours
    hits, how = np.zeros(len(DERIVED_PROBES), bool), ""
    for k, label in pools:
        h, got = derived_hits(n, k)
        hits |= h
        how = how or (label + got if got else "")
    return bool(hits[0]) and hits[1:].mean() <= DERIVED_CHANCE, how


def classify(numbers: list[Number], leaves: Leaves) -> None:
    """Sets each number's status (direct, derived, weak, short, untraced) and how it was traced.

    Scopes in order: the files the number's unit cites, those its section cites; summary leaves
    (not in a series) before all leaves; then every result file, direct only, at 3 or more
    significant digits; every direct trace before any derived one. Derived: at the unit, then
    the section, from the scope's summary leaves of one key and the unit's directly traced
    numbers, guarded against chance over all of that step's pool (see derived())."""
    for n in numbers:
        n.status, n.how = "", ""
        if n.sig < 2:
            n.status = "short"
            continue
        for scope, files in (("number", n.own_cites), ("unit", n.unit_cites), ("section", n.section_cites)):
            for f, series in ((f, s) for s in (False, True) for f in files):
                if n.status:
                    break
                hits = direct_hits(n, leaves.pool((f,), series)[0])
                if _specific(hits) and (len(files) == 1 or
                                        _specific(direct_hits(n, leaves.pool(tuple(files), series)[0]))):
                    n.status, n.how = "direct", f"{scope}: {f}"
                elif hits[0] and not n.how:
                    n.how = (f"{scope}: {f} matches, but so do its neighbours" if not _specific(hits) else
                             f"{scope}: {f} matches, but its neighbours match the {scope}'s other files")
        if not n.status and _specific(direct_hits(n, n.table_values)):
            n.status, n.how = "direct", "table: a generated table of the same doc"
    everything, _ = leaves.pool(None, False)
    for n in numbers:
        if not n.status and n.sig >= 3 and _specific(direct_hits(n, everything)):
            n.status, n.how = "direct", "global: " + next(f for f in leaves.by_file
                                                          if direct_hits(n, leaves.pool((f,), False)[0])[0])
    units: dict[int, list[Number]] = {}
    for n in numbers:
        units.setdefault(id(n.unit_cites), []).append(n)
    for n in numbers:
        if n.status:
            continue
        if n.how:  # a leaf of a cited file gives it, unspecifically: a derivation does not outrank that
            n.status = "weak"
            continue
        peers = {p.value for p in units[id(n.unit_cites)] if p.status == "direct" and p is not n}
        for scope, files in (("number", n.own_cites), ("unit", n.unit_cites), ("section", n.section_cites)):
            if scope == "number" and not files:
                continue
            ok, how = derived(n, leaves, files, peers)
            if ok:
                n.status, n.how = "derived", f"{scope}: {how}"
                break
        if n.status:
            continue
        if direct_hits(n, everything)[0] or n.how or direct_hits(n, leaves.pool(None, True)[0])[0]:
            n.status = "weak"
            n.how = n.how or ("global: matches, but so do its neighbours" if n.sig >= 3 else "global: short")
        else:
            n.status = "untraced"


# -- the report and the check ---------------------------------------------------------------

def docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def run(paths: list[Path] | None = None, leaves: Leaves | None = None) -> list[Number]:
    """Every prose number of the docs (default: README.md and docs/*.md), classified."""
    leaves = leaves or Leaves.load()
    out = []
    for p in paths or docs():
        out += extract(p.relative_to(ROOT).as_posix(), p.read_text(), list(leaves.by_file))
    classify(out, leaves)
    return out


def read_exceptions(path: Path = EXCEPTIONS) -> dict[tuple[str, str], str]:
    """{(doc, number as written): reason} of the reviewed exceptions file."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        doc, num, reason = (c.strip() for c in line.split("|", 2))
        out[(doc, num)] = reason
    return out


def check(numbers: list[Number], exceptions: dict[tuple[str, str], str]) -> tuple[list[Number], list[tuple[str, str]]]:
    """(untraced numbers not excepted, exceptions no untraced number needs any more)."""
    untraced = [n for n in numbers if n.status == "untraced"]
    new = [n for n in untraced if (n.doc, n.text) not in exceptions]
    used = {(n.doc, n.text) for n in untraced}
    return new, sorted(k for k in exceptions if k not in used)


STATUSES = ("direct", "derived", "weak", "short", "untraced")


def report(numbers: list[Number], exceptions: dict) -> str:
    rows = ["| file | numbers | " + " | ".join(STATUSES) + " | of which excepted |",
            "|---|---:|" + "---:|" * (len(STATUSES) + 1)]
    for doc in [*dict.fromkeys(n.doc for n in numbers), "all"]:
        ns = [n for n in numbers if doc in ("all", n.doc)]
        c = [sum(n.status == s for n in ns) for s in STATUSES]
        exc = sum(n.status == "untraced" and (n.doc, n.text) in exceptions for n in ns)
        rows.append(f"| {doc} | {len(ns):,} | " + " | ".join(f"{x:,}" for x in c) + f" | {exc:,} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 on an untraced number not excepted")
    ap.add_argument("--untraced", action="store_true", help="list untraced numbers")
    ap.add_argument("--show", default="", help="list numbers of these statuses (comma-separated)")
    args = ap.parse_args()
    numbers = run()
    exceptions = read_exceptions()
    print(report(numbers, exceptions))
    show = set(filter(None, args.show.split(","))) | ({"untraced"} if args.untraced else set())
    for n in numbers:
        if n.status in show:
            print(f"{n.status:8} {n.doc}:{n.line}: {n.text!r} [{n.how}] {n.context}")
    if args.check:
        new, gone = check(numbers, exceptions)
        for n in new:
            print(f"untraced: {n.doc}:{n.line}: {n.text} ({n.context})", file=sys.stderr)
        for doc, num in gone:
            print(f"stale exception (no untraced {num} in {doc}): {doc} | {num}", file=sys.stderr)
        return 1 if new or gone else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
