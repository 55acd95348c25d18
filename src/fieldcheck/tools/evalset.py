"""A labelled evaluation set built from real phone photos: `fieldcheck eval variants`.

The checks are measured on real photos and on full-resolution variants of them made here the
same way every time (fixed seeds): the originals scaled to 2400 px on the long side as they are
(sharp), Gaussian blurs of sigma 1.5 to 3.2 px and motion blurs of 10 to 25 px (blurred: price
labels can no longer be read at that size), sensor-like noise on sharp and blurred copies (noise
is not detail), dark and washed-out copies (bad exposure), and copies a fraudster would make of
the same picture (re-encoded, resized, brightened, cropped, slightly rotated, saved upright).

The labels say what each file is (`file,blurred,bad_exposure,duplicate_group,reference_group,
screen`, empty = not labelled); the committed `eval/shared-photos.csv` is what this writes for
../shared/photos, and `fieldcheck eval photos --labels` measures the checks against it.

Blur has two labellings. `labels.csv` follows the rule the checks were asked to meet: every
original is sharp, its blurred variants blurred. `labels-reviewed.csv` (committed as
`eval/shared-photos-reviewed.csv`) takes the originals as a person judged them in a blind visual
review at 1600 px (eval/calibration/blind-review.md): an original judged soft, and its copies,
should be flagged; one judged borderline is left out of the blur family; blurred variants stay
blurred.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from fieldcheck.checks.imaging import cv2

COLUMNS = ("file", "blurred", "bad_exposure", "duplicate_group", "reference_group", "screen")
LONG_SIDE = 2400
QUALITY = 92


@dataclass(frozen=True)
class Original:
    """A real photo of ../shared/photos and what is known of it."""

    name: str
    blurred: bool = False
    bad_exposure: bool | None = False
    group: str = ""  # the same picture (one shutter press, HDR on and off): copies of each other
    scene: str = ""  # the same scene shot again: not copies, but references of each other
    variants: bool = False  # large enough (2400 px or more) for the full-resolution variants
    turned: bool = False  # stored sideways or upside down (EXIF orientation): also saved upright
    # How it looked in the blind visual review at 1600 px (eval/calibration/blind-review.md):
    # sharp, soft (should be flagged) or borderline (not labelled for blur in the reviewed labels).
    review: str = "sharp"


# The real photos (the 1x1 px file is left out: nothing can be measured on it).
ORIGINALS = (
    Original("phone_lumia800_sunset_lowlight_gps.jpg", variants=True, review="borderline"),
    Original("phone_oppo_r7plus_13mp_gps.jpg", variants=True),
    Original("phone_iphone5_flowers_rot180_gps.jpg", variants=True, turned=True),
    Original("phone_nexus4_night_gps.jpg", variants=True),
    Original("neardup_iphone6_hdr_off_gps.jpg", group="hdr", variants=True, review="soft"),
    Original("neardup_iphone6_hdr_on_gps.jpg", group="hdr", variants=True, review="soft"),
    Original("phone_iphone4_receipt_gps.jpg"),
    Original("phone_htc_desire_parkinglot_gps.jpg"),
    Original("phone_galaxy_s_faces_rot90_gps.jpg"),
    # Three shots of one scene (sharp, out of focus, shaken): the same scene, not copies.
    Original("blur_honor7x_176_sharp.jpg", scene="honor7x-176"),
    Original("blur_honor7x_176_defocus.jpg", blurred=True, scene="honor7x-176", review="soft"),
    Original("blur_honor7x_176_motion.jpg", blurred=True, scene="honor7x-176", review="soft"),
    Original("blur_honor10_180_sharp.jpg", scene="honor10-180"),
    Original("blur_honor10_180_defocus.jpg", blurred=True, scene="honor10-180", review="soft"),
    Original("blur_honor10_180_motion.jpg", blurred=True, scene="honor10-180", review="soft"),
    # One product (the same milk carton) on the shelf and in a hand: not copies, but a reference
    # of each other.
    Original("shelf_grocery_milk_001.jpg", scene="arla-milk"),
    Original("shelf_grocery_milk_002_inhand.jpg", scene="arla-milk"),
    Original("shelf_grocery_orange_juice_001.jpg"),
    Original("shelf_grocery_apple_juice_001.jpg", review="soft"),
)


@dataclass(frozen=True)
class Label:
    file: str
    blurred: bool | None = None
    bad_exposure: bool | None = None
    duplicate_group: str = ""
    reference_group: str = ""
    screen: bool | None = None

    def row(self) -> dict[str, str]:
        def flag(value: bool | None) -> str:
            return "" if value is None else str(int(value))

        return {
            "file": self.file,
            "blurred": flag(self.blurred),
            "bad_exposure": flag(self.bad_exposure),
            "duplicate_group": self.duplicate_group,
            "reference_group": self.reference_group,
            "screen": flag(self.screen),
        }


Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Variant:
    suffix: str
    transform: Transform
    blurred: bool | None = False
    bad_exposure: bool | None = False
    copy: bool = True  # the same picture: in the original's duplicate group
    save: dict[str, int] = field(default_factory=dict)
    upright: bool = False  # pixels turned as the EXIF orientation says, orientation dropped


def gaussian(sigma: float) -> Transform:
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)


def motion(length: int, angle: float) -> Transform:
    """A straight shake of `length` px at `angle` degrees (a line kernel, the usual model)."""
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    turned = cv2.warpAffine(line, cv2.getRotationMatrix2D(centre, angle, 1.0), (length, length))
    kernel = (turned / float(turned.sum())).astype(np.float32)
    return lambda image: cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def noise(sigma: float, seed: int, then: Transform | None = None) -> Transform:
    """Sensor-like noise (Gaussian, per channel) on the image, after `then` if given."""

    def apply(image: np.ndarray) -> np.ndarray:
        base = then(image) if then else image
        rng = np.random.default_rng(seed)
        noisy = base.astype(np.float32) + rng.normal(0.0, sigma, base.shape).astype(np.float32)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    return apply


def scale_values(gain: float, offset: float = 0.0) -> Transform:
    def apply(image: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = cv2.convertScaleAbs(image, alpha=gain, beta=offset)
        return scaled

    return apply


def washed_out(image: np.ndarray) -> np.ndarray:
    lifted = 255.0 * (image.astype(np.float32) / 255.0) ** 0.25
    washed: np.ndarray = np.clip(lifted * 1.1 + 40, 0, 255).astype(np.uint8)
    return washed


def resize(factor: float) -> Transform:
    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        return cv2.resize(
            image, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA
        )

    return apply


def crop(share: float) -> Transform:
    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        dy, dx = round(height * share), round(width * share)
        return image[dy : height - dy, dx : width - dx].copy()

    return apply


def rotate(degrees: float) -> Transform:
    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.06)  # no black corners
        return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)

    return apply


def same(image: np.ndarray) -> np.ndarray:
    return image


VARIANTS = (
    Variant("sharp", same),
    Variant("gauss1.5", gaussian(1.5), blurred=True),
    Variant("gauss2.0", gaussian(2.0), blurred=True),
    Variant("gauss2.4", gaussian(2.4), blurred=True),
    Variant("gauss3.2", gaussian(3.2), blurred=True),
    Variant("motion10", motion(10, 0), blurred=True),
    Variant("motion15", motion(15, 45), blurred=True),
    Variant("motion20", motion(20, 90), blurred=True),
    Variant("motion25", motion(25, 135), blurred=True),
    Variant("noise6", noise(6, 1)),
    Variant("noise12", noise(12, 2)),
    Variant("gauss2.4-noise6", noise(6, 3, then=gaussian(2.4)), blurred=True),
    Variant("motion15-noise6", noise(6, 4, then=motion(15, 30)), blurred=True),
    Variant("dark", scale_values(0.12), blurred=None, bad_exposure=True),
    Variant("washed", washed_out, blurred=None, bad_exposure=True),
    Variant("q60", same, save={"quality": 60}),
    Variant("half", resize(0.5)),
    Variant("brighter", scale_values(1.15, 12), bad_exposure=None),
    Variant("crop4", crop(0.04)),
    Variant("tilt2", rotate(2.0)),
    Variant("upright", same, upright=True),
)


def variants_of(original: Original) -> list[Variant]:
    return [v for v in VARIANTS if original.turned or not v.upright]


def variant_name(original: str, suffix: str) -> str:
    return f"v_{Path(original).stem.removesuffix('_gps')}_{suffix}.jpg"


REVIEWS = ("sharp", "soft", "borderline")


def labels(originals: tuple[Original, ...] = ORIGINALS, *, reviewed: bool = False) -> Iterator[Label]:
    """Every file of the set and its labels, in the order they are written; with `reviewed`, the
    originals and their unblurred copies are labelled for blur as the visual review saw them."""
    for original in originals:
        if original.review not in REVIEWS:
            raise ValueError(f"{original.name}: review must be one of {', '.join(REVIEWS)}")
        own = Path(original.name).stem.removesuffix("_gps")
        group = original.group or own
        scene = original.scene or group
        as_taken: bool | None = original.blurred
        if reviewed:
            as_taken = {"soft": True, "borderline": None}.get(original.review, original.blurred)
        yield Label(
            original.name,
            blurred=as_taken,
            bad_exposure=original.bad_exposure,
            duplicate_group=group,
            reference_group=scene,
        )
        if not original.variants:
            continue
        for variant in variants_of(original):
            blurred = variant.blurred
            if blurred is False:  # a copy is as sharp as the picture it copies
                blurred = as_taken
            yield Label(
                variant_name(original.name, variant.suffix),
                blurred=blurred,
                bad_exposure=variant.bad_exposure,
                duplicate_group=group if variant.copy else "",
                reference_group=scene,
            )


def write_labels(rows: Iterator[Label], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for label in rows:
        writer.writerow(label.row())


def _load(path: Path) -> tuple[np.ndarray, bytes | None, int]:
    """Pixels as stored (BGR, EXIF orientation not applied), the EXIF block and the orientation."""
    with Image.open(path) as image:
        exif = image.info.get("exif")
        orientation = int(image.getexif().get(0x0112, 1))
        rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), exif, orientation


def _save(path: Path, image: np.ndarray, exif: bytes | None, *, quality: int = QUALITY) -> None:
    rgb = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    options: dict[str, object] = {"quality": quality}
    if exif:
        options["exif"] = exif
    rgb.save(path, "JPEG", **options)


def build(
    photos: Path,
    out: Path,
    echo: Callable[[str], None] = print,
    originals: tuple[Original, ...] = ORIGINALS,
) -> Path:
    """Copy the originals, write the variants, labels.csv and labels-reviewed.csv into `out`;
    returns the labels file (labels.csv)."""
    from fieldcheck.checks.imaging import resize_long_side, upright

    out.mkdir(parents=True, exist_ok=True)
    for original in originals:
        source = photos / original.name
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing (the set is built from ../shared/photos)")
        shutil.copyfile(source, out / original.name)
        if not original.variants:
            continue
        pixels, exif, orientation = _load(source)
        base = resize_long_side(pixels, min(LONG_SIDE, max(pixels.shape[:2])))
        made = variants_of(original)
        for variant in made:
            image = variant.transform(base)
            keep_exif = exif
            if variant.upright:
                image = upright(image, orientation)
                keep_exif = _without_orientation(exif)
            _save(out / variant_name(original.name, variant.suffix), image, keep_exif, **variant.save)
        echo(f"  {original.name}: {len(made)} variants")
    target = out / "labels.csv"
    with target.open("w", newline="") as handle:
        write_labels(labels(originals), handle)
    with (out / REVIEWED_LABELS).open("w", newline="") as handle:
        write_labels(labels(originals, reviewed=True), handle)
    return target


REVIEWED_LABELS = "labels-reviewed.csv"


def _without_orientation(exif: bytes | None) -> bytes | None:
    if not exif:
        return exif
    parsed = Image.Exif()
    parsed.load(exif)
    parsed[0x0112] = 1
    return parsed.tobytes()
