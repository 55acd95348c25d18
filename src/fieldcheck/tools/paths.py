"""Where the tools find the real photos of ../shared/photos."""

from __future__ import annotations

from pathlib import Path

import click

SHARED_PHOTOS = (Path("../shared/photos"), Path(__file__).resolve().parents[4] / "shared" / "photos")


def shared_photos() -> Path:
    for folder in SHARED_PHOTOS:
        if folder.is_dir():
            return folder
    raise click.ClickException(
        f"no photo folder at {' or '.join(str(f) for f in SHARED_PHOTOS)}: give one with --photos"
    )
