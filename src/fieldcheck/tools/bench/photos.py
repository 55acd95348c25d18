"""`fieldcheck bench photos`: the cost of checking a photo, next to the cost of merely decoding it.

For each photo, in the same run and the same process: the median time of the whole per-photo
check (file safety, header, EXIF, resolution, blur, exposure, hashes, screen recapture, and the
reference match against five stored references, as a campaign with five reference photos has), of a
full-resolution colour decode (cv2.imdecode IMREAD_COLOR) and of a 1/8 reduced grayscale decode
(the floor: entropy decoding every check must pay). Both under two memory regimes, because a full
colour decode of 8 to 13 MP writes 24 to 39 MB that the allocator either maps afresh (the kernel
zeroes every page on first touch: a third of the decode's time) or hands back from memory it kept:
"fresh" returns the process's free memory to the system before every timed run (malloc_trim), as
in a process whose memory was given back; "reused" runs in a child process whose allocator keeps
and reuses freed memory (glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_), as in a
worker in its steady state. Which one a process sees depends on what it did before, so the ratio
is given for both (one alone moved between runs by up to 1.6 times). Then the peak memory of one check on the
largest photo, measured in a fresh process; the peak memory of eight worst-case images checked
at once (what fits under each format's gate, at its largest), with the process's decode cap and
without it; and the time of one duplicate lookup against a million stored perceptual hashes.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from fieldcheck.checks import imaging, reference
from fieldcheck.checks.imaging import cv2
from fieldcheck.checks.photo import check_photo, reference_features

REPEATS = 9
PHONE_SIZE_PIXELS = 2_000_000  # the ratios are judged on phone-size photos
DEFAULT_FOLDERS = (Path("../shared/photos"), Path(__file__).resolve().parents[5] / "shared" / "photos")
HASHES = 1_000_000
CONCURRENT_RUNS = 3
LOOKUPS = 300


def _release_free_memory() -> None:
    """Give the process's free heap memory back to the system (glibc), so the next big
    allocation is mapped afresh."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()
# The child process of the "reused" regime: freed memory is kept and handed out again.
REUSED_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(512 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def _median_ms(action: Callable[[], Any], repeats: int = REPEATS, *, fresh: bool = False) -> float:
    action()  # warm
    samples = []
    for _ in range(repeats):
        if fresh:
            _release_free_memory()
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def synthetic_12mp() -> bytes:
    rng = np.random.default_rng(12)
    image = np.zeros((3000, 4000, 3), dtype=np.uint8)
    image[:] = np.linspace(60, 200, 4000, dtype=np.uint8)[None, :, None]
    for _ in range(400):
        x, y = int(rng.integers(0, 3800)), int(rng.integers(0, 2700))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(
            image, (x, y), (x + int(rng.integers(40, 300)), y + int(rng.integers(60, 400))), colour, -1
        )
    noise = rng.normal(0, 6, image.shape).astype(np.int16)
    ok, buffer = cv2.imencode(
        ".jpg", np.clip(image + noise, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    assert ok
    return bytes(buffer)


def photo_files(folder: Path | None) -> list[tuple[str, bytes]]:
    candidates = [folder] if folder else [f for f in DEFAULT_FOLDERS if f.is_dir()]
    for candidate in candidates:
        if candidate and candidate.is_dir():
            files = sorted(p for p in candidate.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if files:
                return [(p.name, p.read_bytes()) for p in files]
    return [("synthetic-12mp.jpg", synthetic_12mp())]


REFERENCES = 5


def five_references(files: list[tuple[str, bytes]]) -> list[reference.Features]:
    """Stored features of the five largest photos (as the check job reads them: computed once)."""
    found = []
    for _, data in sorted(files, key=lambda f: -len(f[1])):
        features, _ = reference_features(data, max_bytes=64 << 20)
        if features is not None:
            found.append(reference.Features.from_bytes(features.to_bytes()))
        if len(found) == REFERENCES:
            break
    return found


def floor_work(data: bytes, references: list[reference.Features]) -> Callable[[], Any]:
    """The part of the check no implementation can skip: the greyscale decode at the reduction the
    blur measure's working size allows (1/2 at most for 3 MP, the issue's 1000 px), and the
    reference match (features of a 400 px copy, five matchings). No blur, screen or hash measure."""
    header = imaging.read_header(data)
    factor = imaging.reduction_for(max(header.width, header.height), 1000)

    def work() -> None:
        gray = imaging.decode(data, factor=factor, color=False)
        if gray is None:
            return
        found = reference.features(imaging.resize_long_side(gray, reference.FEATURE_LONG_SIDE))
        reference.best_match(found, references)

    return work


def time_photo(data: bytes, references: list[reference.Features], *, fresh: bool = False) -> dict[str, float]:
    buffer = np.frombuffer(data, dtype=np.uint8)
    return {
        "floor": _median_ms(floor_work(data, references), fresh=fresh),
        "check": _median_ms(
            lambda: check_photo(data, min_short_side_px=1000, max_bytes=64 << 20, references=references),
            fresh=fresh,
        ),
        "full": _median_ms(lambda: cv2.imdecode(buffer, cv2.IMREAD_COLOR), fresh=fresh),
        "r8": _median_ms(lambda: cv2.imdecode(buffer, cv2.IMREAD_REDUCED_GRAYSCALE_8), fresh=fresh),
    }


REUSED_SCRIPT = """
import json, sys
from pathlib import Path
from fieldcheck.tools.bench.photos import five_references, photo_files, time_photo
files = photo_files(Path(sys.argv[1]) if sys.argv[1] else None)
references = five_references(files)
print(json.dumps({name: time_photo(data, references) for name, data in files}))
"""


def reused_memory_times(folder: Path | None) -> dict[str, dict[str, float]]:
    """Every photo timed in a child process whose allocator keeps and reuses freed memory."""
    answer = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", REUSED_SCRIPT, str(folder or "")],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
        env={**os.environ, **REUSED_MEMORY_ENV},
    )
    times: dict[str, dict[str, float]] = json.loads(answer.stdout)
    return times


PEAK_SCRIPT = """
import json, sys
from pathlib import Path
def status(field):
    return int(next(l for l in open('/proc/self/status') if l.startswith(field)).split()[1])
from fieldcheck.checks.photo import check_photo, reference_features
data = Path(sys.argv[1]).read_bytes()
before = status('VmHWM')
references = [reference_features(data, max_bytes=64 << 20)[0]] * 5
check_photo(data, min_short_side_px=1000, max_bytes=64 << 20, references=references)
print(json.dumps({'before_kb': before, 'peak_kb': status('VmHWM')}))
"""


def peak_memory(path: Path) -> dict[str, float]:
    """One check in a fresh process: its peak resident memory, and how much of it the check added."""
    answer = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", PEAK_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ},
    )
    figures = json.loads(answer.stdout)
    return {
        "peak_mb": figures["peak_kb"] / 1024,
        "added_mb": (figures["peak_kb"] - figures["before_kb"]) / 1024,
    }


CONCURRENT_SCRIPT = """
import json, sys, threading
from pathlib import Path
def status(field):
    return int(next(l for l in open('/proc/self/status') if l.startswith(field)).split()[1])
from fieldcheck.checks import imaging
from fieldcheck.checks.derivatives import make_derivatives
from fieldcheck.checks.photo import check_photo
imaging.limit_concurrent_decodes(int(sys.argv[1]))
files = [Path(p).read_bytes() for p in sys.argv[2:]]
before = status('VmHWM')
outcomes = []
def one(data):
    report = check_photo(data, min_short_side_px=1000, max_bytes=64 << 20)
    if report.measurements.get('decoded'):
        make_derivatives(data, width=report.width, height=report.height, orientation=report.orientation,
                         detected_type=report.detected_type, progressive=report.measurements['progressive'])
    outcomes.append(report.outcome.value)
threads = [threading.Thread(target=one, args=(data,)) for data in files]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(json.dumps({'before_kb': before, 'peak_kb': status('VmHWM'), 'outcomes': sorted(outcomes)}))
"""


def worst_case_images(folder: Path) -> list[Path]:
    """Eight images that cost the most memory the gates let through (and one they stop)."""
    rng = np.random.default_rng(9)

    def scene(width: int, height: int) -> np.ndarray:
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:] = np.linspace(40, 220, width, dtype=np.uint8)[None, :, None]
        for _ in range(300):
            x, y = int(rng.integers(0, width - 400)), int(rng.integers(0, height - 400))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.rectangle(image, (x, y), (x + 400, y + 400), colour, -1)
        return image

    def write(name: str, image: np.ndarray, *params: int) -> Path:
        ok, buffer = cv2.imencode(Path(name).suffix, image, list(params))
        assert ok
        path = folder / name
        path.write_bytes(bytes(buffer))
        return path

    full_size = scene(5400, 4000)  # 21.6 MP: the largest a PNG or a progressive JPEG may be
    huge = scene(10000, 10000)  # 100 MP: the largest any image may be
    made = [
        write("png-21mp-a.png", full_size, cv2.IMWRITE_PNG_COMPRESSION, 9),
        write("png-21mp-b.png", full_size[:, ::-1].copy(), cv2.IMWRITE_PNG_COMPRESSION, 9),
        write("progressive-21mp-a.jpg", full_size, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        write("progressive-21mp-b.jpg", full_size[::-1].copy(), cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        write("baseline-100mp-a.jpg", huge, cv2.IMWRITE_JPEG_QUALITY, 80),
        write("baseline-100mp-b.jpg", huge[:, ::-1].copy(), cv2.IMWRITE_JPEG_QUALITY, 80),
        write("baseline-100mp-c.jpg", huge[::-1].copy(), cv2.IMWRITE_JPEG_QUALITY, 80),
    ]
    bomb = folder / "png-100mp-zeros.png"  # passes the 100 MP gate; refused by the PNG one
    bomb.write_bytes(cv2.imencode(".png", np.zeros((9999, 9999), dtype=np.uint8))[1].tobytes())
    return [*made, bomb]


def concurrent_peak(paths: list[Path], decodes: int) -> dict[str, Any]:
    """The images checked at once (check and derivatives) in a fresh process: its peak memory."""
    answer = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", CONCURRENT_SCRIPT, str(decodes), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ},
    )
    figures = json.loads(answer.stdout)
    return {
        "peak_mb": figures["peak_kb"] / 1024,
        "before_mb": figures["before_kb"] / 1024,
        "outcomes": figures["outcomes"],
    }


def time_duplicate_lookup(count: int = HASHES, lookups: int = LOOKUPS) -> float:
    from fieldcheck.checks.duplicates import HashIndex

    rng = np.random.default_rng(5)
    index = HashIndex()
    values = rng.integers(-(2**63), 2**63 - 1, count, dtype=np.int64)
    ids = [uuid.UUID(int=i) for i in range(count)]
    index._append([(i + 1, ids[i], int(values[i])) for i in range(count)])
    targets = [int(v) for v in rng.integers(-(2**63), 2**63 - 1, lookups, dtype=np.int64)]
    index.candidates(targets[0])
    samples = []
    for target in targets:
        started = time.perf_counter()
        index.candidates(target)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


PIPELINE_CLASSES = (("3 MP", 2_500_000, 4_000_000, 100.0), ("12 MP", 11_000_000, 14_000_000, 200.0))


def pipeline_work(
    storage: Any, key: str, references: list[reference.Features], *, before: bool = False
) -> int:
    """The whole per-photo job of a worker: read the photo from storage, check it, make its
    thumbnail and client-safe copy (faces blurred), write both. `before`: as the pipeline did it
    before (a second decode for the derivatives, Haar cascades). Returns the faces blurred."""
    from fieldcheck.checks.derivatives import SAFE_LONG_SIDE, make_derivatives
    from fieldcheck.tools.faces import derivatives_before

    data = storage.get_bytes(key)
    report = check_photo(
        data,
        min_short_side_px=1000,
        max_bytes=64 << 20,
        references=references,
        colour_long_side=None if before else SAFE_LONG_SIDE,
    )
    assert report.width and report.height and report.detected_type
    if before:
        thumbnail, safe = derivatives_before(
            data,
            width=report.width,
            height=report.height,
            orientation=report.orientation,
            kind=report.detected_type,
        )
        faces = -1
    else:
        made = make_derivatives(
            data,
            width=report.width,
            height=report.height,
            orientation=report.orientation,
            detected_type=report.detected_type,
            decoded=report.colour,
        )
        thumbnail, safe, faces = made.thumbnail, made.safe, made.faces_blurred
    storage.put(f"{key}.thumbnail.jpg", thumbnail, content_type="image/jpeg")
    storage.put(f"{key}.client-safe.jpg", safe, content_type="image/jpeg")
    return faces


def _median_cpu_ms(work: Callable[[], object]) -> float:
    work()  # warm: models loaded, buffers allocated
    samples = []
    for _ in range(REPEATS):
        started = time.process_time()
        work()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def pipeline_times(
    files: list[tuple[str, bytes]], references: list[reference.Features], echo: Callable[[str], None]
) -> dict[str, Any]:
    """CPU time of the whole per-photo job on the embedded default's storage, now and before."""
    from fieldcheck.settings import Settings
    from fieldcheck.storage import LocalStorage

    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fieldcheck-bench-") as home:
        storage = LocalStorage(Settings(home=Path(home)))
        rows = []
        for name, data in files:
            pixels = imaging.read_header(data).pixels
            if pixels < PHONE_SIZE_PIXELS:
                continue
            key = f"bench/{name}"
            storage.put(key, data, content_type="image/jpeg")
            now = _median_cpu_ms(functools.partial(pipeline_work, storage, key, []))
            with_references = _median_cpu_ms(functools.partial(pipeline_work, storage, key, references))
            before = _median_cpu_ms(functools.partial(pipeline_work, storage, key, [], before=True))
            rows.append((name, pixels, now, with_references, before))
    echo(
        "whole per-photo job (read from storage, checks, thumbnail, client-safe copy with faces blurred, "
        "two writes), CPU ms, median of each photo's runs:"
    )
    echo(f"{'photo':42} {'MP':>5} {'now':>8} {'5 refs':>8} {'before':>8} {'before/now':>11}")
    for name, pixels, now, with_references, before in rows:
        echo(
            f"{name[:42]:42} {pixels / 1e6:5.1f} {now:6.1f}ms {with_references:6.1f}ms {before:6.1f}ms "
            f"{before / now:10.2f}x"
        )
    for label, low, high, target in PIPELINE_CLASSES:
        chosen = [r for r in rows if low <= r[1] <= high]
        if not chosen:
            continue
        now = statistics.median(r[2] for r in chosen)
        refs = statistics.median(r[3] for r in chosen)
        before = statistics.median(r[4] for r in chosen)
        summary[label] = {"photos": len(chosen), "now_ms": now, "refs_ms": refs, "before_ms": before}
        echo(
            f"pipeline {label} ({len(chosen)} photos): {now:.1f} ms of CPU a photo (target <= {target:.0f}), "
            f"{refs:.1f} ms with five reference photos; before {before:.1f} ms: {before / now:.2f}x cheaper"
        )
    return summary


def run(folder: Path | None, echo: Callable[[str], None] = click.echo) -> dict[str, Any]:
    files = photo_files(folder)
    references = five_references(files)
    pipeline = pipeline_times(files, references, echo)
    echo(f"reference match against {len(references)} stored references included in every check")
    reused = reused_memory_times(folder if folder and folder.is_dir() else None)
    echo(f"{'':56}{'memory given back (fresh)':^36}   {'memory kept (reused)':^27}")
    echo(
        f"{'photo':42} {'size':>11}   {'check':>8} {'full':>8} {'1/8':>7} {'ratio':>6}   "
        f"{'check':>8} {'full':>8} {'ratio':>6}"
    )
    rows = []
    for name, data in files:
        header = imaging.read_header(data)
        times, kept = time_photo(data, references, fresh=True), reused[name]
        rows.append((name, header.pixels, times, kept))
        echo(
            f"{name[:42]:42} {header.width:>5}x{header.height:<5}   {times['check']:6.1f}ms {times['full']:6.1f}ms "
            f"{times['r8']:5.1f}ms {times['check'] / times['full']:6.2f}   {kept['check']:6.1f}ms {kept['full']:6.1f}ms "
            f"{kept['check'] / kept['full']:6.2f}"
        )
    phone = [r for r in rows if r[1] >= PHONE_SIZE_PIXELS] or rows
    summary: dict[str, Any] = {
        "photos": len(phone),
        "median_check_ms": statistics.median(r[2]["check"] for r in phone),
        "ratio_full": statistics.median(r[2]["check"] / r[2]["full"] for r in phone),
        "ratio_full_reused": statistics.median(r[3]["check"] / r[3]["full"] for r in phone),
        "ratio_r8": statistics.median(r[2]["check"] / r[2]["r8"] for r in phone),
        "floor_full": statistics.median(r[2]["floor"] / r[2]["full"] for r in phone),
        "floor_full_reused": statistics.median(r[3]["floor"] / r[3]["full"] for r in phone),
    }
    echo(
        f"phone-size photos ({summary['photos']}): median check {summary['median_check_ms']:.1f} ms; median ratio "
        f"check/full decode {summary['ratio_full']:.2f} with memory given back, {summary['ratio_full_reused']:.2f} "
        f"with memory kept (target <= 1.0); check/(1/8 decode) {summary['ratio_r8']:.2f}"
    )
    echo(
        f"the floor (greyscale decode at the reduction a 1000 px working size allows, features and five "
        f"matchings; nothing else) / full decode, median: {summary['floor_full']:.2f} with memory given back, "
        f"{summary['floor_full_reused']:.2f} with memory kept"
    )
    largest = max(rows, key=lambda r: r[1])
    source = next(data for name, data in files if name == largest[0])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"fieldcheck-bench-{uuid.uuid4().hex}.jpg"  # noqa: S108
    scratch.write_bytes(source)
    try:
        memory = peak_memory(scratch)
    finally:
        scratch.unlink(missing_ok=True)
    summary.update(memory)
    echo(
        f"peak memory of one check on {largest[0]} ({largest[1] / 1e6:.0f} MP): {memory['peak_mb']:.0f} MB for the "
        f"whole process, {memory['added_mb']:.0f} MB added by the check (target < 200 MB)"
    )
    with tempfile.TemporaryDirectory(prefix="fieldcheck-bench-") as scratch_dir:
        paths = worst_case_images(Path(scratch_dir))
        runs = [
            (concurrent_peak(paths, imaging.DEFAULT_CONCURRENT_DECODES), concurrent_peak(paths, len(paths)))
            for _ in range(CONCURRENT_RUNS)
        ]
    capped = statistics.median(run[0]["peak_mb"] for run in runs)
    uncapped = statistics.median(run[1]["peak_mb"] for run in runs)
    summary["concurrent_peak_mb"], summary["uncapped_peak_mb"] = capped, uncapped
    echo(
        f"peak memory of {len(paths)} worst-case images checked at once (2 PNG and 2 progressive JPEG of "
        f"21.6 MP, 3 JPEG of 100 MP, a 100 MP PNG refused at its header), median of {CONCURRENT_RUNS} fresh "
        f"processes: {capped:.0f} MB with {imaging.DEFAULT_CONCURRENT_DECODES} decodes at a time (target < 1024 "
        f"MB), {uncapped:.0f} MB with all {len(paths)} at once ({runs[0][0]['before_mb']:.0f} MB before they "
        f"start; outcomes {', '.join(runs[0][0]['outcomes'])})"
    )
    lookup = time_duplicate_lookup()
    summary["lookup_ms"] = lookup
    summary["pipeline"] = pipeline
    echo(f"duplicate lookup against {HASHES:,} stored hashes: median {lookup:.2f} ms (target < 5 ms)")
    return summary


@click.command("photos")
@click.option(
    "--photos",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of photos (default ../shared/photos; a synthetic 12 MP JPEG when absent).",
)
def photos_command(folder: Path | None) -> None:
    """Time the per-photo check against plain decodes, its peak memory, and duplicate lookups."""
    run(folder)
