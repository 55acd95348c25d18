"""The photo checks as separate processes: memory stays bounded on hostile files, and the
check-photos command reports on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import photos


def test_hostile_files_in_a_separate_process_keep_memory_bounded(tmp_path: Path) -> None:
    """All the bad inputs in one process: it survives, and its peak memory stays small."""
    files = {
        "bomb.png": photos.png_of_zeros(20000, 20000),
        "claims.jpg": photos.jpeg_claiming(30000, 30000),
        "polyglot.png": photos.png_zip_polyglot(),
        "garbage-exif.jpg": photos.garbage_exif_jpeg(),
        "empty.jpg": b"",
        "text.jpg": b"plain text" * 100,
        "truncated.jpg": photos.jpeg(photos.scene())[:20_000],
    }
    paths = [str(photos.write(tmp_path / name, data)) for name, data in files.items()]
    script = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from fieldcheck.checks.photo import check_photo\n"
        "out = [check_photo(Path(p).read_bytes(), min_short_side_px=0, max_bytes=25 << 20).outcome for p in sys.argv[1:]]\n"
        # VmHWM belongs to this program's memory map only (ru_maxrss may count the forked parent).
        "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
        "print(json.dumps({'outcomes': out, 'peak_kb': int(peak)}))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ},
    )
    result = json.loads(answer.stdout)
    assert result["outcomes"] == ["fail", "fail", "fail", "pass", "fail", "fail", "fail"]
    assert result["peak_kb"] < 200 * 1024, result  # the interpreter with numpy and OpenCV is ~110 MB


def test_check_photos_command(tmp_path: Path) -> None:
    sharp = photos.real("blur_honor10_180_sharp.jpg")
    files = [
        photos.write(tmp_path / "sharp.jpg", sharp),
        photos.write(tmp_path / "copy.jpg", sharp),
        photos.write(tmp_path / "text.jpg", b"just text\n" * 10),
    ]
    command = [sys.executable, "-m", "fieldcheck.cli", "check-photos", "--json", *map(str, files)]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    rows = [json.loads(line) for line in answer.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(f) for f in files]
    assert [row["outcome"] for row in rows] == ["pass", "fail", "fail"]
    for row in rows:
        for item in row["checks"]:
            assert set(item) >= {"name", "outcome", "value", "threshold", "explanation"}
    assert any(c["name"] == "duplicate" and c["outcome"] == "fail" for c in rows[1]["checks"])
    human = subprocess.run(
        command[:4] + list(map(str, files[:1])), capture_output=True, text=True, timeout=120, check=True
    )
    assert "PASS" in human.stdout
    assert "blur" in human.stdout
