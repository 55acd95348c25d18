"""Make the images of the blind visual blur review (eval/calibration/blind-review.md).

    .venv/bin/python eval/calibration/blind_review_views.py CALIBRATION_ORIGINALS OUT [--anchor FILE]

CALIBRATION_ORIGINALS holds the files of blur-photos.csv (fetched from their sources); the
evaluation originals are read from ../shared/photos. OUT receives, for every original under a
shuffled id (pNN: the name tells the reviewer nothing), a greyscale overview (800 px) and up to
three 600 x 400 crops at 100 % of a 1600 px copy where the photo has the most detail; and the
anchors: the same crop of one sharp photo that is in neither set (--anchor; we used
drewnoakes/metadata-extractor-images jpg/Canon EOS 20D (1).jpg), as it is and after the mildest blur
that counts as blurred (Gaussian sigma 1.5 px at 2400 px), a clear blur (sigma 2.4) and a 10 px
shake. The key from ids to files is written beside OUT (key.json), out of the reviewer's sight.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()
HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "photos"
CROP_H, CROP_W = 400, 600


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("L"))


def to_long_side(gray: np.ndarray, side: int) -> np.ndarray:
    h, w = gray.shape
    scale = side / max(h, w)
    if scale >= 1:
        return gray
    return cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def detailed_places(gray: np.ndarray, count: int = 3) -> list[tuple[int, int]]:
    """Centres of up to `count` non-overlapping crops where the gradient is strongest."""
    h, w = gray.shape
    ch, cw = min(h, CROP_H), min(w, CROP_W)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    energy = cv2.boxFilter(cv2.magnitude(gx, gy), -1, (cw, ch))
    taken: list[tuple[int, int]] = []
    for _ in range(count):
        free = energy.copy()
        for y, x in taken:
            free[max(0, y - ch) : y + ch, max(0, x - cw) : x + cw] = -1
        free[: ch // 2, :] = free[h - ch // 2 :, :] = -1
        free[:, : cw // 2] = free[:, w - cw // 2 :] = -1
        if free.max() < 0:
            break
        y, x = np.unravel_index(int(free.argmax()), free.shape)
        taken.append((int(y), int(x)))
    return taken


def write_views(gray: np.ndarray, prefix: Path, places: list[tuple[int, int]] | None = None) -> None:
    view = to_long_side(gray, 1600)
    cv2.imwrite(f"{prefix}_overview.png", to_long_side(view, 800))
    ch, cw = min(view.shape[0], CROP_H), min(view.shape[1], CROP_W)
    for k, (y, x) in enumerate(places if places is not None else detailed_places(view), start=1):
        cv2.imwrite(f"{prefix}_crop{k}.png", view[y - ch // 2 : y - ch // 2 + ch, x - cw // 2 : x - cw // 2 + cw])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("calibration", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--anchor", type=Path)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources = [
        ("calibration", args.calibration / row["file"])
        for row in csv.DictReader((HERE / "blur-photos.csv").open())
    ]
    sources += [("evaluation", p) for p in sorted(SHARED.glob("*.jpg")) if not p.name.startswith("edge_")]
    random.Random(args.seed).shuffle(sources)
    key = {}
    for number, (kind, path) in enumerate(sources, start=1):
        key[f"p{number:02d}"] = [kind, path.name]
        write_views(load(path), args.out / f"p{number:02d}")
    (args.out.parent / "key.json").write_text(json.dumps(key, indent=1))
    if args.anchor:
        base = to_long_side(load(args.anchor), 2400)
        places = detailed_places(to_long_side(base, 1600), count=1)
        line = np.full((1, 10), 0.1, np.float32)
        for name, image in (
            ("sharp", base),
            ("gauss1.5", cv2.GaussianBlur(base, (0, 0), 1.5)),
            ("gauss2.4", cv2.GaussianBlur(base, (0, 0), 2.4)),
            ("motion10", cv2.filter2D(base, -1, line)),
        ):
            write_views(image, args.out / f"anchor_{name}", places)


if __name__ == "__main__":
    main()
