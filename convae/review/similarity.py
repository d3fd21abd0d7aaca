"""Similarity report: pairs of submissions whose answers are suspiciously alike.

``python -m convae similarity`` reads every handed-in notebook (``submitted/<student>/<assignment>/``),
compares each student's answer cells with every other student's answers to the same exercise, and
writes, under ``reports/similarity/``:

- ``<assignment>__<notebook>.html``: the flagged pairs of that notebook, highest score first, each
  with the two answers side by side and the matching code marked; then the closest pairs below the
  threshold, to show how far the rest of the class is;
- ``index.html``: one line per notebook, with links;
- ``pairs.csv``: every pair of students that answered a common exercise, flagged or not.

How answers are compared (nothing a student wrote is imported or run: it is lexed as text):

1. *Tokens.* Pygments' Python lexer splits each answer cell (it copes with code that does not
   parse). Comments, docstrings and whitespace are dropped. Names the student chose (variables,
   parameters, functions, classes, ``self.`` attributes) all become one symbol, so renaming changes
   nothing; so do string literals. Keywords, operators, numbers, builtins, keyword-argument names
   and what the code reaches through imported modules and attributes (``torch.exp``,
   ``F.conv2d``, ``x.sum``) stay as written: that is what makes two independent answers differ.
2. *Fingerprints.* Every run of ``kgram`` consecutive tokens of one answer cell is a fingerprint
   (winnowing with a window of one: all are kept, so every common run that long is found, and the
   result does not depend on hash values). Reordering functions or statements only breaks the
   fingerprints that straddle a cut.
3. *What everyone shares is ignored.* Tokens covered by a fingerprint of any code cell of the
   release (stubs, locked cells, the visible tests), or lined up with the exercise's stub (its
   signature), are given code: a fingerprint touching them counts for no pair. So, with
   ``--ignore-solution``, is the instructor's solution. Fingerprints found in the same exercise of
   more than a quarter of the class (and of more than ``COMMON_MIN`` students) are the class's
   common idiom and count for no pair either.
4. *Score.* For each exercise both students answered, the tokens of each answer that lie in a
   fingerprint the other answer also has are "matched". The pair's score is matched tokens over
   counted tokens, both students and all those exercises together: an exercise weighs as much as
   its answers are long, so a one-line formula that many write alike weighs little. A pair is
   flagged when its score reaches ``--threshold`` and at least ``--min-tokens`` tokens matched.

Limits: markdown answers are not compared (prose and LaTeX derivations need another measure; a
person grades them, beside the mark scheme). An answer is compared with the same exercise only:
code moved into another answer cell is not matched (the student's own extra code cells are
compared as one more exercise, ``(own cells)``). Code that more than a quarter of the class copied
from one source looks like the class's common idiom (``--common-share 1`` keeps everything). A
flagged pair is a reason to look, not a verdict.
"""

from __future__ import annotations

import argparse
import ast
import csv
import difflib
import functools
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup, escape
from pygments.lexers import PythonLexer
from pygments.token import Comment, Name, Punctuation, String

from convae import notebooks
from convae.grading.commands import assignments

OWN_CELLS = "(own cells)"  # the student's extra code cells of a notebook, compared as one exercise
NAME, STRING = "N", "S"  # the symbols every student-chosen name and every string literal become
STUB_RUN = 3  # tokens in a row that line up with the stub make given code (a signature)
COMMON_MIN = 10  # a fingerprint is the class's common idiom only when more students than this share it

# Defaults measured with tools/bench_similarity.py and tests/test_similarity.py (see the README).
KGRAM = 12
THRESHOLD = 0.6
MIN_TOKENS = 40
COMMON_SHARE = 0.25


@dataclass(frozen=True)
class Settings:
    threshold: float = THRESHOLD
    min_tokens: int = MIN_TOKENS
    kgram: int = KGRAM
    ignore_solution: bool = False
    common_share: float = COMMON_SHARE  # of the students who answered an exercise


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    symbol: str
    start: int  # character range in the cell's source
    end: int


def imported_names(source: str) -> set[str]:
    """Names an import statement binds in ``source`` (nothing when it does not parse)."""
    if "import" not in source:
        return set()  # most answers: no need to parse
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


DROP, STRING_PART, AS_WRITTEN, CHOSEN_NAME, BRACKET = range(5)  # what the lexer's token types become


@functools.cache
def token_kind(ttype) -> int:
    """How a Pygments token type is normalised (cached: a class has a handful of types)."""
    if ttype in Comment or ttype in String.Doc:
        return DROP  # a copy changes comments and docstrings freely
    if ttype in String:
        return STRING_PART
    if ttype in Name.Builtin or ttype in Name.Exception or ttype in Name.Namespace:
        return AS_WRITTEN  # builtins (len, self, super) and the module paths of imports
    if ttype in Name:
        return CHOSEN_NAME
    return BRACKET if ttype in Punctuation else AS_WRITTEN  # keywords, operators, numbers


def name_symbol(
    value: str, previous: str | None, before_previous: str | None, keyword: bool, modules: set[str]
) -> str:
    """A name as written when the language or a library defines it, ``NAME`` when the student chose it."""
    if previous == ".":
        # An attribute is a library's API (x.sum, F.conv2d), except what the student put on self.
        return NAME if before_previous in ("self", "cls") else value
    if value in modules or keyword:
        return value  # an imported module, or a keyword argument's name
    return NAME


@functools.cache
def lexer() -> PythonLexer:
    return PythonLexer()


def tokenise(source: str, modules: set[str]) -> list[Token]:
    """The normalised tokens of one answer cell (``modules``: names bound by imports)."""
    lexed = [
        (start, kind, value)
        for start, ttype, value in lexer().get_tokens_unprocessed(source)
        if (kind := token_kind(ttype)) != DROP and value.strip()  # whitespace goes too
    ]
    tokens: list[Token] = []
    depth = 0  # bracket depth: ``name=`` inside brackets is a keyword argument, outside an assignment
    for n, (start, kind, value) in enumerate(lexed):
        end = start + len(value)
        if kind == BRACKET:
            depth = max(0, depth + value.count("(") + value.count("[") - value.count(")") - value.count("]"))
        if kind == STRING_PART and tokens and lexed[n - 1][1] == STRING_PART:
            tokens[-1] = Token(STRING, tokens[-1].start, end)  # one literal, however many pieces
            continue
        if kind == STRING_PART:
            symbol = STRING
        elif kind == CHOSEN_NAME:
            previous = lexed[n - 1][2] if n else None
            before_previous = lexed[n - 2][2] if n >= 2 else None
            keyword = depth > 0 and n + 1 < len(lexed) and lexed[n + 1][2] == "="
            name = value.lstrip("@")  # a decorator
            symbol = value[: len(value) - len(name)] + name_symbol(
                name, previous, before_previous, keyword, modules
            )
        else:
            symbol = value
        tokens.append(Token(symbol, start, end))
    return tokens


# --- fingerprints -------------------------------------------------------------------------------


def fingerprints(tokens: list[Token], k: int) -> dict[tuple, list[int]]:
    """Every run of ``k`` token symbols, with the token index where each occurrence starts."""
    symbols = [t.symbol for t in tokens]
    found: dict[tuple, list[int]] = defaultdict(list)
    for i in range(len(symbols) - k + 1):
        found[tuple(symbols[i : i + k])].append(i)
    return found


def covered(starts, k: int, size: int) -> list[bool]:
    """Which of ``size`` tokens lie in a fingerprint starting at one of ``starts``."""
    mask = [False] * size
    for i in starts:
        mask[i : i + k] = [True] * k
    return mask


def aligned(symbols: list[str], stub: list[str]) -> list[bool]:
    """Which symbols line up with a run of at least ``STUB_RUN`` tokens of the stub (its signature)."""
    mask = [False] * len(symbols)
    for block in difflib.SequenceMatcher(None, stub, symbols, autojunk=False).get_matching_blocks():
        if block.size >= STUB_RUN:
            mask[block.b : block.b + block.size] = [True] * block.size
    return mask


@dataclass(frozen=True)
class Given:
    """What every student of a notebook was given: it counts for no pair."""

    modules: set[str]  # names the release's imports bind
    grams: set[tuple]  # fingerprints of every code cell of the release (and of the solution)
    stubs: dict[str, list[str]]  # exercise -> the symbols of its release cell


@dataclass
class Answer:
    """One student's answer to one exercise, fingerprinted, what was given taken out."""

    source: str
    tokens: list[Token]
    grams: dict[tuple, list[int]]  # fingerprint -> where it starts (token index)
    counted: int = 0  # tokens in a fingerprint that is neither given nor the class's common idiom

    @classmethod
    def of(cls, exercise: str, source: str, given: Given, k: int) -> Answer:
        tokens = tokenise(source, given.modules | imported_names(source))
        grams = fingerprints(tokens, k)
        # The release's fingerprints catch its locked code anywhere; a signature shorter than a
        # fingerprint is caught by lining the answer up with its own stub.
        from_release = covered([i for g in grams.keys() & given.grams for i in grams[g]], k, len(tokens))
        from_stub = aligned([t.symbol for t in tokens], given.stubs.get(exercise, []))
        given_tokens = [x or y for x, y in zip(from_release, from_stub, strict=True)]
        # An occurrence that touches given code is dropped whole: given code counts neither way.
        kept = {g: [i for i in starts if not any(given_tokens[i : i + k])] for g, starts in grams.items()}
        return cls(source, tokens, {g: starts for g, starts in kept.items() if starts})


# --- reading the class --------------------------------------------------------------------------


def code_cells(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def handed_in_answers(nb, exercises: list[str]) -> dict[str, str]:
    """A notebook's answers by grade_id, taken as grading takes them (the first code cell with that
    id), and the student's own extra code cells joined as ``OWN_CELLS``."""
    answers: dict[str, str] = {}
    own = []
    for cell in nb.cells:
        cell_id = notebooks.grade_id(cell)
        if cell.cell_type != "code":
            continue
        if cell_id in exercises:
            answers.setdefault(cell_id, cell.source)
        elif not notebooks.nbgrader_meta(cell):
            own.append(cell.source)
    if own:
        answers[OWN_CELLS] = "\n\n".join(own)
    return answers


@dataclass
class NotebookClass:
    """Every student's answers to one notebook, ready to compare."""

    assignment: str
    notebook: str
    answers: dict[str, dict[str, Answer]]  # student -> exercise -> answer
    unreadable: dict[str, str] = field(default_factory=dict)  # student -> why


def given_material(root: Path, assignment: str, notebook: str, settings: Settings) -> Given:
    """The release's code cells (and, with ``ignore_solution``, the solution's answer cells)."""
    release_nb = notebooks.read(root / "release" / assignment / f"{notebook}.ipynb")
    sources = code_cells(release_nb)
    if settings.ignore_solution:
        source_nb = notebooks.read(root / "source" / assignment / f"{notebook}.ipynb")
        sources += [
            notebooks.strip_solution_markers(cell.source)
            for cell in source_nb.cells
            if notebooks.is_answer_cell(cell)
        ]
    modules = set().union(*(imported_names(s) for s in sources))
    grams = {g for s in sources for g in fingerprints(tokenise(s, modules), settings.kgram)}
    stubs = {
        notebooks.grade_id(cell): [t.symbol for t in tokenise(cell.source, modules)]
        for cell in release_nb.cells
        if notebooks.is_answer_cell(cell)
    }
    return Given(modules, grams, stubs)


def read_notebook_class(root: Path, assignment: str, notebook: str, settings: Settings) -> NotebookClass:
    """Every handed-in copy of one notebook, its answers fingerprinted."""
    given = given_material(root, assignment, notebook, settings)
    exercises = list(given.stubs)
    result = NotebookClass(assignment, notebook, {})
    for path in sorted((root / "submitted").glob(f"*/{assignment}/{notebook}.ipynb")):
        student = path.parent.parent.name
        try:
            nb = notebooks.read(path)
        except Exception as error:  # noqa: BLE001 -- an unreadable file is reported, not fatal
            result.unreadable[student] = f"{type(error).__name__}: {error}"[:200]
            continue
        result.answers[student] = {
            exercise: Answer.of(exercise, source, given, settings.kgram)
            for exercise, source in handed_in_answers(nb, exercises).items()
        }
    drop_common_idiom(result, settings)
    return result


def drop_common_idiom(nb_class: NotebookClass, settings: Settings) -> None:
    """Remove fingerprints that many students share in an exercise, then count each answer's tokens."""
    by_exercise: dict[str, list[Answer]] = defaultdict(list)
    for answers in nb_class.answers.values():
        for exercise, answer in answers.items():
            by_exercise[exercise].append(answer)
    for answers in by_exercise.values():
        answered = [a for a in answers if a.grams]
        limit = max(COMMON_MIN, settings.common_share * len(answered))
        frequency: dict[tuple, int] = defaultdict(int)
        for answer in answered:
            for gram in answer.grams:
                frequency[gram] += 1
        for answer in answered:
            answer.grams = {g: s for g, s in answer.grams.items() if frequency[g] <= limit}
            answer.counted = sum(
                covered(itertools.chain(*answer.grams.values()), settings.kgram, len(answer.tokens))
            )


# --- comparing ----------------------------------------------------------------------------------


@dataclass
class ExerciseMatch:
    exercise: str
    answers: tuple[Answer, Answer]
    common: set[tuple]  # the fingerprints both answers have
    kgram: int
    tokens: tuple[int, int]  # counted tokens of each answer
    matched: tuple[int, int]  # of those, the tokens in a common fingerprint

    @functools.cached_property
    def spans(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The matched character ranges of each answer (only a shown pair needs them)."""
        a, b = (matched_mask(answer, self.common, self.kgram) for answer in self.answers)
        return char_spans(self.answers[0].tokens, a), char_spans(self.answers[1].tokens, b)


@dataclass
class Pair:
    assignment: str
    notebook: str
    student_a: str
    student_b: str
    exercises: list[ExerciseMatch]  # those both answered

    @property
    def score(self) -> float:
        counted = sum(sum(e.tokens) for e in self.exercises)
        return sum(sum(e.matched) for e in self.exercises) / counted if counted else 0.0

    @property
    def matched_tokens(self) -> int:
        """Matched tokens of the side with fewer of them."""
        return min(sum(e.matched[0] for e in self.exercises), sum(e.matched[1] for e in self.exercises))

    def flagged(self, settings: Settings) -> bool:
        return self.score >= settings.threshold and self.matched_tokens >= settings.min_tokens


def char_spans(tokens: list[Token], mask: list[bool]) -> list[tuple[int, int]]:
    """Character ranges of the runs of marked tokens (a run spans the comments inside it)."""
    spans: list[list[int]] = []
    for n, (token, marked) in enumerate(zip(tokens, mask, strict=True)):
        if marked and n and mask[n - 1]:
            spans[-1][1] = token.end
        elif marked:
            spans.append([token.start, token.end])
    return [(start, end) for start, end in spans]


def matched_mask(answer: Answer, common: set[tuple], k: int) -> list[bool]:
    return covered([i for g in common for i in answer.grams[g]], k, len(answer.tokens))


def match_exercise(exercise: str, a: Answer, b: Answer, k: int) -> ExerciseMatch:
    common = a.grams.keys() & b.grams.keys()
    matched = (sum(matched_mask(a, common, k)), sum(matched_mask(b, common, k))) if common else (0, 0)
    return ExerciseMatch(exercise, (a, b), common, k, (a.counted, b.counted), matched)


def compare(nb_class: NotebookClass, settings: Settings) -> list[Pair]:
    """Every pair of students with an exercise both answered, highest score first."""
    pairs = []
    for student_a, student_b in itertools.combinations(sorted(nb_class.answers), 2):
        answers_a, answers_b = nb_class.answers[student_a], nb_class.answers[student_b]
        exercises = [
            match_exercise(exercise, answers_a[exercise], answers_b[exercise], settings.kgram)
            for exercise in answers_a
            if exercise in answers_b and answers_a[exercise].counted and answers_b[exercise].counted
        ]
        if exercises:
            pairs.append(Pair(nb_class.assignment, nb_class.notebook, student_a, student_b, exercises))
    return sorted(pairs, key=lambda p: (-p.score, p.student_a, p.student_b))


def notebooks_of(root: Path, only: list[str] | None = None) -> list[tuple[str, str]]:
    """(assignment, notebook) for every notebook of the release, or of the assignments ``only``."""
    return [
        (assignment, path.stem)
        for assignment in assignments(root)
        if not only or assignment in only
        for path in sorted((root / "release" / assignment).glob("*.ipynb"))
    ]


# --- reports ------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "assignment",
    "notebook",
    "student_a",
    "student_b",
    "score",
    "matched_tokens",
    "tokens_a",
    "tokens_b",
    "exercises_compared",
    "exercises_matched",
    "flagged",
]


def csv_row(pair: Pair, settings: Settings) -> list:
    return [
        pair.assignment,
        pair.notebook,
        pair.student_a,
        pair.student_b,
        f"{pair.score:.4f}",
        pair.matched_tokens,
        sum(e.tokens[0] for e in pair.exercises),
        sum(e.tokens[1] for e in pair.exercises),
        len(pair.exercises),
        ";".join(e.exercise for e in pair.exercises if any(e.matched)),
        pair.flagged(settings),
    ]


def write_csv(pairs: list[Pair], settings: Settings, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(pair, settings) for pair in pairs)


def marked(text: str) -> list:
    """``text`` in ``<mark>`` line by line, its indentation and line ends left unmarked."""
    parts = []
    for line in text.splitlines(keepends=True):
        body = line.strip()
        if not body:
            parts.append(escape(line))
            continue
        head, tail = line[: line.index(body)], line[line.index(body) + len(body) :]
        parts += [escape(head), Markup("<mark>"), escape(body), Markup("</mark>"), escape(tail)]
    return parts


def highlighted(source: str, spans: list[tuple[int, int]]) -> Markup:
    """The answer as escaped text, each matched range in ``<mark>``."""
    parts, position = [], 0
    for start, end in spans:
        parts += [escape(source[position:start]), *marked(source[start:end])]
        position = end
    parts.append(escape(source[position:]))
    return Markup("").join(parts)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
.sides { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; }
.sides pre { background: #fafafa; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto; margin: 0; }
mark { background: #ffd27a; }
.note { color: #555; }
section.pair { border-top: 2px solid #888; margin-top: 2em; }
"""

NOTEBOOK_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Similarity: {{ nb.assignment }}/{{ nb.notebook }}</title><style>{{ style }}</style></head><body>
<p><a href="index.html">all notebooks</a></p>
<h1>Similarity: {{ nb.assignment }} / {{ nb.notebook }}.ipynb</h1>
<p class="note">{{ nb.answers | length }} submissions read{% if nb.unreadable %},
{{ nb.unreadable | length }} unreadable{% endif %}; {{ pairs | length }} pairs answered a common exercise;
<b>{{ flagged | length }} flagged</b>
(score &ge; {{ settings.threshold }} and at least {{ settings.min_tokens }} matched tokens).
Score: the share of both answers' tokens that lie in a common run of {{ settings.kgram }} tokens, over the
exercises both answered. Not counted: the release's code{% if settings.ignore_solution %} and the published
solution{% endif %}, and runs that more than {{ (settings.common_share * 100) | round | int }}% of the class
(at least {{ common_min }} students) share.</p>
{% if nb.unreadable %}<p>Unreadable notebooks:</p><ul>
{% for student, why in nb.unreadable.items() %}<li>{{ student }}: {{ why }}</li>{% endfor %}</ul>{% endif %}
<h2>Flagged pairs</h2>
{% if flagged %}<table><tr><th>#</th><th>student A</th><th>student B</th><th>score</th><th>matched tokens</th>
<th>exercises with common code</th></tr>
{% for pair in flagged %}<tr><td><a href="#pair-{{ loop.index }}">{{ loop.index }}</a></td>
<td>{{ pair.student_a }}</td><td>{{ pair.student_b }}</td><td>{{ "%.2f" | format(pair.score) }}</td>
<td>{{ pair.matched_tokens }}</td>
<td>{{ matched_names(pair) }}</td></tr>
{% endfor %}</table>{% else %}<p>None.</p>{% endif %}
<h2>Closest pairs below the threshold</h2>
{% if closest %}<table><tr><th>student A</th><th>student B</th><th>score</th><th>matched tokens</th></tr>
{% for pair in closest %}<tr><td>{{ pair.student_a }}</td><td>{{ pair.student_b }}</td>
<td>{{ "%.2f" | format(pair.score) }}</td><td>{{ pair.matched_tokens }}</td></tr>{% endfor %}</table>
{% else %}<p>None.</p>{% endif %}
{% for pair in flagged %}<section class="pair" id="pair-{{ loop.index }}">
<h2>{{ loop.index }}. {{ pair.student_a }} and {{ pair.student_b }}:
score {{ "%.2f" | format(pair.score) }}</h2>
{% for match in pair.exercises | sort(attribute="matched", reverse=true) %}
<h3>{{ match.exercise }}</h3>
<p class="note">{{ pair.student_a }}: {{ match.matched[0] }} of {{ match.tokens[0] }} counted tokens matched;
{{ pair.student_b }}: {{ match.matched[1] }} of {{ match.tokens[1] }}.</p>
<div class="sides">
{% for side in (0, 1) %}<div><b>{{ (pair.student_a, pair.student_b)[side] }}</b>
<pre>{{ highlighted(match.answers[side].source, match.spans[side]) }}</pre></div>{% endfor %}
</div>{% endfor %}
</section>{% endfor %}
</body></html>
"""

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similarity report</title>
<style>{{ style }}</style></head><body>
<h1>Similarity report</h1>
<p class="note">Threshold {{ settings.threshold }}, at least {{ settings.min_tokens }} matched tokens, runs of
{{ settings.kgram }} tokens{% if settings.ignore_solution %}, the published solution ignored{% endif %}.
Every pair, flagged or not: <a href="pairs.csv">pairs.csv</a>.</p>
<table><tr><th>notebook</th><th>submissions</th><th>pairs</th><th>flagged</th><th>highest score</th></tr>
{% for nb, pairs, flagged in rows %}
<tr><td><a href="{{ page_name(nb) }}">{{ nb.assignment }}/{{ nb.notebook }}</a></td>
<td>{{ nb.answers | length }}</td><td>{{ pairs | length }}</td><td>{{ flagged | length }}</td>
<td>{{ "%.2f" | format(pairs[0].score) if pairs else "" }}</td></tr>{% endfor %}</table>
</body></html>
"""

CLOSEST_SHOWN = 10


def page_name(nb_class: NotebookClass) -> str:
    return f"{nb_class.assignment}__{nb_class.notebook}.html"


def matched_names(pair: Pair) -> str:
    return ", ".join(
        f"{e.exercise} ({sum(e.matched) / sum(e.tokens):.0%})" for e in pair.exercises if any(e.matched)
    )


def environment() -> Environment:
    env = Environment(autoescape=True)  # every value a student wrote is escaped unless marked safe
    env.globals.update(
        style=Markup(STYLE), highlighted=highlighted, matched_names=matched_names, page_name=page_name
    )
    return env


def notebook_page(nb_class: NotebookClass, pairs: list[Pair], settings: Settings) -> str:
    flagged = [p for p in pairs if p.flagged(settings)]
    closest = [p for p in pairs if not p.flagged(settings)][:CLOSEST_SHOWN]
    return (
        environment()
        .from_string(NOTEBOOK_PAGE)
        .render(
            nb=nb_class,
            pairs=pairs,
            flagged=flagged,
            closest=closest,
            settings=settings,
            common_min=COMMON_MIN,
        )
    )


def index_page(rows: list[tuple[NotebookClass, list[Pair], list[Pair]]], settings: Settings) -> str:
    return environment().from_string(INDEX_PAGE).render(rows=rows, settings=settings)


# --- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=THRESHOLD,
        help=f"flag pairs scoring at least this (default {THRESHOLD})",
    )
    parser.add_argument(
        "--min-tokens",
        type=int,
        default=MIN_TOKENS,
        help=f"and with at least this many matched tokens (default {MIN_TOKENS})",
    )
    parser.add_argument(
        "--ignore-solution",
        action="store_true",
        help="the solution is published: its code counts for no pair",
    )
    parser.add_argument("--kgram", type=int, default=KGRAM, help=f"tokens in a fingerprint (default {KGRAM})")
    parser.add_argument(
        "--common-share",
        type=float,
        default=COMMON_SHARE,
        help="ignore code found in more than this share of the class's answers to an exercise "
        f"(and at least {COMMON_MIN}; default {COMMON_SHARE}; 1 keeps everything)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/similarity)")


def run(root: Path, args: argparse.Namespace) -> int:
    settings = Settings(args.threshold, args.min_tokens, args.kgram, args.ignore_solution, args.common_share)
    unknown = set(args.assignment or []) - set(assignments(root))
    if unknown:
        print(f"error: no assignment {', '.join(sorted(unknown))} in source/")
        return 2
    out = args.out or root / "reports" / "similarity"
    out.mkdir(parents=True, exist_ok=True)
    rows, every_pair = [], []
    for assignment, notebook in notebooks_of(root, args.assignment):
        nb_class = read_notebook_class(root, assignment, notebook, settings)
        pairs = compare(nb_class, settings)
        flagged = [p for p in pairs if p.flagged(settings)]
        (out / page_name(nb_class)).write_text(notebook_page(nb_class, pairs, settings), encoding="utf-8")
        rows.append((nb_class, pairs, flagged))
        every_pair += pairs
        print(f"{assignment}/{notebook}: {len(nb_class.answers)} submissions, {len(flagged)} pairs flagged")
        for student, why in nb_class.unreadable.items():
            print(f"  unreadable: {student}: {why}")
    write_csv(every_pair, settings, out / "pairs.csv")
    (out / "index.html").write_text(index_page(rows, settings), encoding="utf-8")
    print(f"report: {out / 'index.html'}, every pair: {out / 'pairs.csv'}")
    return 0
