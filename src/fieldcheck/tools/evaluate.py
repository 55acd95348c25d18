"""`fieldcheck eval photos --labels FILE.csv`: how right the photo checks are on labelled photos.

The labels file has the columns `file,blurred,bad_exposure,duplicate_group,reference_group,
screen` (1 or 0; empty = not labelled; files relative to the labels file). For each check family
it prints accuracy, precision, recall, false flags and the files it got wrong. A photo counts as
flagged by a check when its outcome is not a pass (a warning sends it to a person, a failure
refuses it). Reference match: every pair of files of one `reference_group` must match (copies of
one picture included: a copy matches its original), and no pair of different groups. Duplicates:
every file of a `duplicate_group` must be flagged as a copy of another file of its group, and no
file as a copy of a file outside its group.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import click

from fieldcheck.checks import reference
from fieldcheck.checks.hashes import same_picture
from fieldcheck.checks.models import Outcome
from fieldcheck.checks.photo import PhotoReport, check_photo

FAMILIES = {"blurred": "blur", "bad_exposure": "exposure", "screen": "screen"}
MIN_SHORT_SIDE = 300  # the resolution rule is not what is measured here
MAX_BYTES = 64 << 20
SHOWN_WRONG = 40  # per family in the printed report


class LabelsError(click.ClickException):
    pass


@dataclass
class Case:
    file: str
    path: Path
    labels: dict[str, bool | None]
    duplicate_group: str
    reference_group: str


@dataclass
class Score:
    family: str
    labelled: int = 0
    true_positives: int = 0
    false_positives: int = 0
    true_negatives: int = 0
    false_negatives: int = 0
    not_measured: int = 0
    wrong: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        right = self.true_positives + self.true_negatives
        return right / self.labelled if self.labelled else None

    @property
    def precision(self) -> float | None:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else None

    def count(self, expected: bool, flagged: bool, case: str, measured: str | None) -> None:
        self.labelled += 1
        if expected and flagged:
            self.true_positives += 1
        elif expected:
            self.false_negatives += 1
            self.wrong.append({"file": case, "expected": "flagged", "measured": measured})
        elif flagged:
            self.false_positives += 1
            self.wrong.append({"file": case, "expected": "not flagged", "measured": measured})
        else:
            self.true_negatives += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "wrong"},
            "accuracy": _round(self.accuracy),
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "false_flags": self.false_positives,
            "wrong": self.wrong,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def read_labels(path: Path) -> list[Case]:
    folder = path.parent
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"file"} - set(reader.fieldnames or [])
            if missing:
                raise LabelsError(f"{path}: no `file` column (columns: {', '.join(reader.fieldnames or [])})")
            cases = []
            for line, row in enumerate(reader, start=2):
                name = (row.get("file") or "").strip()
                if not name:
                    raise LabelsError(f"{path}, line {line}: empty `file`")
                labels = {column: _flag(row.get(column), path, line, column) for column in FAMILIES}
                cases.append(
                    Case(
                        name,
                        folder / name,
                        labels,
                        (row.get("duplicate_group") or "").strip(),
                        (row.get("reference_group") or "").strip(),
                    )
                )
    except UnicodeDecodeError as exc:
        raise LabelsError(f"{path} is not UTF-8 text: {exc}") from exc
    absent = [c.file for c in cases if not c.path.is_file()]
    if absent:
        raise LabelsError(
            f"{len(absent)} file(s) of {path} are missing, first {absent[0]} (files are read "
            f"relative to the CSV, from {folder}; `fieldcheck eval variants OUT` builds the labelled "
            "set of ../shared/photos, with OUT/labels.csv beside its files)"
        )
    return cases


def _flag(value: str | None, path: Path, line: int, column: str) -> bool | None:
    text = (value or "").strip().lower()
    if text == "":
        return None
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise LabelsError(f"{path}, line {line}: {column} is {value!r}; use 1, 0 or leave it empty")


def _outcome(report: PhotoReport, name: str) -> tuple[bool | None, str | None]:
    found = next((c for c in report.checks if c.name == name), None)
    if found is None:
        return None, None
    return found.outcome is not Outcome.passed, f"{found.outcome.value} {found.value}"


def evaluate(cases: list[Case], *, threads: int = 2) -> dict[str, Any]:
    def run(case: Case) -> PhotoReport:
        # references=(): the reference match is not measured, but each photo's features are kept
        return check_photo(
            case.path.read_bytes(), min_short_side_px=MIN_SHORT_SIDE, max_bytes=MAX_BYTES, references=()
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        reports = list(pool.map(run, cases))
    scores: dict[str, Score] = {}
    for column, check in FAMILIES.items():
        score = Score(check)
        for case, report in zip(cases, reports, strict=True):
            expected = case.labels[column]
            if expected is None:
                continue
            flagged, measured = _outcome(report, check)
            if flagged is None:
                score.not_measured += 1
                flagged = False
            score.count(expected, flagged, case.file, measured)
        scores[check] = score
    scores["duplicate"] = _duplicates(cases, reports)
    scores["reference_match"] = _references(cases, reports, threads=threads)
    return {
        "photos": len(cases),
        "families": {name: score.as_dict() for name, score in scores.items()},
    }


def _duplicates(cases: list[Case], reports: list[PhotoReport]) -> Score:
    """Each file of a group of two or more must be flagged with a mate; nothing with a stranger."""
    sizes: dict[str, int] = {}
    for case in cases:
        if case.duplicate_group:
            sizes[case.duplicate_group] = sizes.get(case.duplicate_group, 0) + 1
    mates: dict[int, set[int]] = {i: set() for i in range(len(cases))}
    for (i, a), (j, b) in combinations(enumerate(reports), 2):
        same = a.sha256 == b.sha256 or (a.comparable and b.comparable and same_picture(a, b)[0])
        if same:
            mates[i].add(j)
            mates[j].add(i)
    score = Score("duplicate")
    for i, case in enumerate(cases):
        group = case.duplicate_group
        expected = bool(group) and sizes[group] > 1
        with_mate = any(cases[j].duplicate_group == group for j in mates[i]) if group else False
        strangers = [cases[j].file for j in mates[i] if not group or cases[j].duplicate_group != group]
        if strangers:
            score.count(False, True, case.file, f"a copy of {', '.join(sorted(strangers)[:3])}")
            continue
        score.count(expected, with_mate, case.file, "no copy found" if expected and not with_mate else None)
    return score


def _references(cases: list[Case], reports: list[PhotoReport], *, threads: int) -> Score:
    """Every pair of labelled files: those of one reference_group must match, others must not."""
    labelled = [i for i, case in enumerate(cases) if case.reference_group and reports[i].features is not None]
    pairs = list(combinations(labelled, 2))

    def run(pair: tuple[int, int]) -> reference.Match:
        first, second = (reports[k].features for k in pair)
        assert first is not None and second is not None
        return reference.match(first, second)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        matches = list(pool.map(run, pairs))
    score = Score("reference_match")
    for (i, j), found in zip(pairs, matches, strict=True):
        expected = cases[i].reference_group == cases[j].reference_group
        measured = f"{found.inliers} points ({found.share:.0%} of {found.matches} matches)"
        score.count(expected, found.same_scene, f"{cases[i].file} ~ {cases[j].file}", measured)
    return score


def render(result: dict[str, Any], echo: Callable[[str], None] = click.echo) -> None:
    echo(f"{result['photos']} photos")
    for name, score in result["families"].items():
        if not score["labelled"]:
            echo(f"\n{name}: no labelled photo")
            continue
        echo(
            f"\n{name}: accuracy {_text(score['accuracy'])}, precision {_text(score['precision'])}, "
            f"recall {_text(score['recall'])}, false flags {score['false_flags']} "
            f"({score['labelled']} labelled: {score['true_positives'] + score['false_negatives']} "
            f"should be flagged)"
        )
        if score["not_measured"]:
            echo(f"  not measured on {score['not_measured']} photo(s) (counted as not flagged)")
        for wrong in score["wrong"][:SHOWN_WRONG]:
            echo(f"  wrong: {wrong['file']}: expected {wrong['expected']}, measured {wrong['measured']}")
        if len(score["wrong"]) > SHOWN_WRONG:
            echo(f"  ... and {len(score['wrong']) - SHOWN_WRONG} more wrong (--json lists them all)")


def _text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@click.command("photos")
@click.option(
    "--labels",
    "labels_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV: file,blurred,bad_exposure,duplicate_group,reference_group,screen (files relative to it).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the report.")
def photos_command(labels_path: Path, as_json: bool) -> None:
    """Accuracy, precision, recall and false flags per check family, and the files it got wrong."""
    result = evaluate(read_labels(labels_path))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        render(result)


@click.command("variants")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--photos",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The real photos (default ../shared/photos beside the project).",
)
def variants_command(out: Path, photos: Path | None) -> None:
    """Build the labelled set from ../shared/photos into OUT: the photos, their variants, labels.csv."""
    from fieldcheck.tools.evalset import build
    from fieldcheck.tools.paths import shared_photos

    labels = build(photos or shared_photos(), out, echo=click.echo)
    click.echo(f"labels: {labels}")
