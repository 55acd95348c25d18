"""`fieldcheck eval faces`: how many labelled faces the client-safe copy blurs, and what else it blurs.

The labels (eval/faces/labels.csv: file, x, y, w, h, kind) were drawn by eye on real photos of
the public repository drewnoakes/metadata-extractor-images (jpg/, "free to use these media files
however you wish"; not committed here: give the folder with `--photos`), in the frame of the
client-safe copy: the photo upright, scaled to 1600 px on the long side. eval/faces/reviewed.csv
lists every photo looked at, so photos without a face count too (what a detector finds there is
a false detection). eval/faces/README.md says how they were made.

The set is split once by a fixed rule, before any result was seen: photos whose number (the
file name's prefix) is odd are the calibration half, where the score threshold and the search
sizes were chosen (`--sweep`); even ones are the test half, whose figures are the ones quoted.

Faces the labeller marked doubtful (tiny crowd faces, faces cut by the frame or mostly turned
away) count neither way. A labelled face counts as blurred when the blurred rectangles (each detection grown by the
client-safe copy's margin) cover at least 75 % of its box. A detection whose centre is in no
labelled box is a false detection (a patch of shelf blurred for nothing). Both detectors are
measured: YuNet as the pipeline runs it, and the Haar cascade schedule fieldcheck used before it
(frontal and profile cascades, each also on the mirrored image, at 640 px), kept here only for
this comparison and for the benchmark.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageOps

from fieldcheck.checks import derivatives
from fieldcheck.checks.imaging import cv2

LABELS = Path(__file__).resolve().parents[3] / "eval" / "faces"
FRAME_LONG_SIDE = derivatives.SAFE_LONG_SIDE
COVERED = 0.75
SMALL_FACE_PX = 60  # long side of a face box under this (in the 1600 px frame): reported apart

Box = tuple[int, int, int, int]


# The detector fieldcheck used before YuNet: kept for the comparison only --------------------
HAAR_CASCADES = {"haarcascade_frontalface_alt2.xml": 5, "haarcascade_profileface.xml": 6}
HAAR_SEARCH_LONG_SIDE = 640
HAAR_MIN_SIZE = 24
HAAR_SCALE_STEP = 1.15
_haar: dict[str, cv2.CascadeClassifier] = {}


def haar_faces(image: np.ndarray) -> list[Box]:
    """Face boxes as the earlier pipeline found them: four Haar cascade passes at 640 px."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = min(1.0, HAAR_SEARCH_LONG_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    small = cv2.equalizeHist(small)
    mirrored = cv2.flip(small, 1)
    width = small.shape[1]
    boxes: list[Box] = []
    for name, neighbours in HAAR_CASCADES.items():
        if name not in _haar:
            _haar[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
        for flipped, source in ((False, small), (True, mirrored)):
            for x, y, w, h in _haar[name].detectMultiScale(
                source,
                scaleFactor=HAAR_SCALE_STEP,
                minNeighbors=neighbours,
                minSize=(HAAR_MIN_SIZE, HAAR_MIN_SIZE),
            ):
                x = width - x - w if flipped else x
                boxes.append((round(x / scale), round(y / scale), round(w / scale), round(h / scale)))
    return boxes


# Labels ------------------------------------------------------------------------------------
@dataclass
class Labelled:
    file: str
    faces: list[Box] = field(default_factory=list)  # people in the scene
    depicted: list[Box] = field(default_factory=list)  # faces on posters, screens, photos
    doubtful: list[Box] = field(default_factory=list)  # real but hard to judge: neither counted nor false

    @property
    def half(self) -> str:
        number = self.file.split("_", 1)[0]
        return "calibration" if number.isdigit() and int(number) % 2 else "test"


def load_labels(folder: Path = LABELS) -> list[Labelled]:
    with (folder / "reviewed.csv").open(newline="") as handle:
        photos = {row["file"]: Labelled(row["file"]) for row in csv.DictReader(handle)}
    with (folder / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            box = (int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
            target = photos[row["file"]]
            if row["note"].startswith("doubtful"):
                target.doubtful.append(box)
            elif row["kind"] == "depicted":
                target.depicted.append(box)
            else:
                target.faces.append(box)
    return list(photos.values())


def photo_path(folder: Path, name: str, labels: Path = LABELS) -> Path:
    """A labelled photo in `folder`: a folder of files named as in the labels, or a checkout of
    metadata-extractor-images (its path read from sources.csv)."""
    if (folder / name).is_file():
        return folder / name
    if "_sources" not in _sources_cache:
        with (labels / "sources.csv").open(newline="") as handle:
            _sources_cache["_sources"] = {row["file"]: row["path"] for row in csv.DictReader(handle)}
    return folder / _sources_cache["_sources"][name]


_sources_cache: dict[str, dict[str, str]] = {}


def frame(path: Path) -> np.ndarray:
    """The photo as the client-safe copy sees it: upright, 1600 px on the long side, BGR."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((FRAME_LONG_SIDE, FRAME_LONG_SIDE))
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


# Scoring -----------------------------------------------------------------------------------
def _blurred_mask(shape: tuple[int, int], boxes: Sequence[Box]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    height, width = shape
    for x, y, w, h in boxes:
        mx, my = int(w * derivatives.FACE_MARGIN), int(h * derivatives.FACE_MARGIN)
        mask[max(0, y - my) : min(height, y + h + my), max(0, x - mx) : min(width, x + w + mx)] = True
    return mask


def _inside(point: tuple[float, float], box: Box) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


@dataclass
class Score:
    faces: int = 0
    blurred: int = 0
    small_faces: int = 0
    small_blurred: int = 0
    photos: int = 0
    false_detections: int = 0
    photos_with_false: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, photo: Labelled, shape: tuple[int, int], found: Sequence[Box], ms: float) -> None:
        mask = _blurred_mask(shape, found)
        self.photos += 1
        self.ms.append(ms)
        for x, y, w, h in photo.faces:
            covered = bool(mask[y : y + h, x : x + w].mean() >= COVERED) if w and h else False
            if max(w, h) < SMALL_FACE_PX:
                self.small_faces += 1
                self.small_blurred += covered
            else:
                self.faces += 1
                self.blurred += covered
        false = sum(
            1
            for x, y, w, h in found
            if not any(
                _inside((x + w / 2, y + h / 2), box)
                for box in [*photo.faces, *photo.depicted, *photo.doubtful]
            )
        )
        self.false_detections += false
        self.photos_with_false += bool(false)

    def line(self) -> str:
        recall = self.blurred / self.faces if self.faces else float("nan")
        small = self.small_blurred / self.small_faces if self.small_faces else float("nan")
        return (
            f"faces blurred {self.blurred}/{self.faces} ({recall:.1%}); small faces (< {SMALL_FACE_PX} px) "
            f"{self.small_blurred}/{self.small_faces} ({small:.0%}); false detections {self.false_detections} "
            f"in {self.photos_with_false} of {self.photos} photos; median {statistics.median(self.ms):.1f} ms"
        )


Detector = Callable[[np.ndarray], list[Box]]


def evaluate(photos: Sequence[tuple[Labelled, np.ndarray]], detector: Detector) -> Score:
    score = Score()
    for photo, image in photos:
        started = time.process_time()
        found = detector(image)
        score.add(photo, image.shape[:2], found, (time.process_time() - started) * 1000)
    return score


def yunet(score: float, long_sides: tuple[int, ...]) -> Detector:
    def detect(image: np.ndarray) -> list[Box]:
        found = derivatives.face_candidates(image, score=score, long_sides=long_sides)
        return [(x, y, w, h) for x, y, w, h, _ in found]

    return detect


SWEEP_SCORES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SWEEP_SIDES = ((640, 160), (480, 160), (640,), (800, 200))


@click.command("faces")
@click.option(
    "--photos",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A checkout of drewnoakes/metadata-extractor-images, or a folder of its JPEGs named as in the labels.",
)
@click.option(
    "--labels", "labels", type=click.Path(exists=True, file_okay=False, path_type=Path), default=LABELS
)
@click.option("--sweep", is_flag=True, help="Try score thresholds and search sizes on the calibration half.")
def faces_command(folder: Path, labels: Path, sweep: bool) -> None:
    """Face recall and false detections of the client-safe copy's blurring, YuNet against Haar."""
    cv2.setNumThreads(1)
    labelled = load_labels(labels)
    halves: dict[str, list[tuple[Labelled, np.ndarray]]] = {"calibration": [], "test": []}
    for photo in labelled:
        halves[photo.half].append((photo, frame(photo_path(folder, photo.file, labels))))
    for half, photos in halves.items():
        people = sum(len(p.faces) for p, _ in photos)
        click.echo(f"{half} half: {len(photos)} photos, {people} labelled faces")
    if sweep:
        calibration = halves["calibration"]
        for sides in SWEEP_SIDES:
            for threshold in SWEEP_SCORES:
                result = evaluate(calibration, yunet(threshold, sides))
                click.echo(f"calibration  yunet score >= {threshold:.1f} at {sides}: {result.line()}")
        click.echo(f"calibration  haar (before): {evaluate(calibration, haar_faces).line()}")
        return
    current = yunet(derivatives.FACE_SCORE_THRESHOLD, derivatives.FACE_SEARCH_LONG_SIDES)
    for half, photos in halves.items():
        click.echo(f"{half:12} yunet (now):   {evaluate(photos, current).line()}")
        click.echo(f"{half:12} haar (before): {evaluate(photos, haar_faces).line()}")


def derivatives_before(
    data: bytes, *, width: int, height: int, orientation: int, kind: str
) -> tuple[bytes, bytes]:
    """The thumbnail and client-safe copy as the earlier pipeline made them, for the benchmark's
    "before": a second decode in colour, the Haar schedule, a Gaussian blur, optimised JPEG tables."""
    from fieldcheck.checks import imaging

    factor = imaging.reduction_within_budget(
        kind, width, height, target=FRAME_LONG_SIDE, channels=imaging.COLOUR_BYTES
    )
    image = imaging.decode(data, factor=factor or 1, color=True)
    if image is None:
        raise ValueError("the image could not be decoded")
    if max(image.shape[:2]) > FRAME_LONG_SIDE:
        image = imaging.resize_long_side(image, FRAME_LONG_SIDE)
    image = imaging.upright(image, orientation)
    out = image.copy()
    for x, y, w, h in haar_faces(image):
        mx, my = int(w * derivatives.FACE_MARGIN), int(h * derivatives.FACE_MARGIN)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(out.shape[1], x + w + mx), min(out.shape[0], y + h + my)
        region = out[y0:y1, x0:x1]
        if region.size:
            small = cv2.resize(
                region, (max(1, (x1 - x0) // 16), max(1, (y1 - y0) // 16)), interpolation=cv2.INTER_AREA
            )
            blocky = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
            kernel = max(3, ((min(x1 - x0, y1 - y0) // 8) | 1))
            out[y0:y1, x0:x1] = cv2.GaussianBlur(blocky, (kernel, kernel), 0)
    params = [cv2.IMWRITE_JPEG_QUALITY, derivatives.JPEG_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    thumbnail = imaging.resize_long_side(out, derivatives.THUMBNAIL_LONG_SIDE)
    return bytes(cv2.imencode(".jpg", thumbnail, params)[1]), bytes(cv2.imencode(".jpg", out, params)[1])
