"""`fieldcheck eval`: the labelled set built from ../shared/photos, and the scores of the checks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fieldcheck.cli import main
from fieldcheck.tools import evalset
from fieldcheck.tools.evaluate import LabelsError, evaluate, read_labels
from tests.support import photos
from tests.support.backends import ROOT

COMMITTED = ROOT / "eval" / "shared-photos.csv"
COMMITTED_REVIEWED = ROOT / "eval" / "shared-photos-reviewed.csv"


def test_the_committed_labels_are_what_the_set_builder_writes() -> None:
    for path, reviewed in ((COMMITTED, False), (COMMITTED_REVIEWED, True)):
        written = io.StringIO()
        evalset.write_labels(evalset.labels(reviewed=reviewed), written)
        assert path.read_text() == written.getvalue(), path


def test_the_reviewed_labels_take_the_originals_as_a_person_saw_them() -> None:
    rule = {label.file: label for label in evalset.labels()}
    seen = {label.file: label for label in evalset.labels(reviewed=True)}
    # Judged soft in the blind review: the photo and its unblurred copies should be flagged.
    for name in ("neardup_iphone6_hdr_on_gps.jpg", "v_neardup_iphone6_hdr_on_noise12.jpg"):
        assert rule[name].blurred is False
        assert seen[name].blurred is True
    # Judged borderline: left out of the blur family; its blurred variants stay blurred.
    assert seen["phone_lumia800_sunset_lowlight_gps.jpg"].blurred is None
    assert seen["v_phone_lumia800_sunset_lowlight_q60.jpg"].blurred is None
    assert seen["v_phone_lumia800_sunset_lowlight_gauss1.5.jpg"].blurred is True
    # Judged sharp: as the rule says. Other families are the same in both.
    assert seen["v_phone_oppo_r7plus_13mp_noise12.jpg"].blurred is False
    assert seen["v_phone_oppo_r7plus_13mp_gauss1.5.jpg"].blurred is True
    assert all(seen[f].bad_exposure == rule[f].bad_exposure for f in rule)
    assert all(seen[f].duplicate_group == rule[f].duplicate_group for f in rule)
    with pytest.raises(ValueError, match="review"):
        list(evalset.labels((evalset.Original("x.jpg", review="blurry"),)))


def test_every_variant_is_labelled_as_what_it_is() -> None:
    rows = {label.file: label for label in evalset.labels()}
    assert rows["v_phone_oppo_r7plus_13mp_sharp.jpg"].blurred is False
    assert rows["v_phone_oppo_r7plus_13mp_gauss1.5.jpg"].blurred is True
    assert rows["v_phone_oppo_r7plus_13mp_motion25.jpg"].blurred is True
    assert rows["v_phone_oppo_r7plus_13mp_noise12.jpg"].blurred is False  # noise is not blur
    assert rows["v_phone_oppo_r7plus_13mp_dark.jpg"].bad_exposure is True
    assert rows["v_phone_oppo_r7plus_13mp_dark.jpg"].blurred is None  # nothing to judge it by
    # One shutter press (HDR on and off) is one picture; three shots of a scene are not copies.
    assert rows["neardup_iphone6_hdr_on_gps.jpg"].duplicate_group == "hdr"
    assert rows["v_neardup_iphone6_hdr_off_crop4.jpg"].duplicate_group == "hdr"
    sharp, defocus = rows["blur_honor7x_176_sharp.jpg"], rows["blur_honor7x_176_defocus.jpg"]
    assert sharp.duplicate_group != defocus.duplicate_group
    assert sharp.reference_group == defocus.reference_group == "honor7x-176"
    assert "v_phone_iphone5_flowers_rot180_upright.jpg" in rows  # only the turned photo
    assert "v_phone_oppo_r7plus_13mp_upright.jpg" not in rows


def test_the_variants_of_a_photo_are_written_at_2400_px(tmp_path: Path) -> None:
    photos.real("phone_oppo_r7plus_13mp_gps.jpg")  # a clear failure when the folder is missing
    one = (evalset.Original("phone_oppo_r7plus_13mp_gps.jpg", variants=True),)
    labels = evalset.build(photos.PHOTOS_DIR, tmp_path, echo=lambda _: None, originals=one)
    cases = read_labels(labels)
    assert len(cases) == 1 + len(evalset.VARIANTS) - 1  # no upright copy: it is stored upright
    assert len(read_labels(tmp_path / evalset.REVIEWED_LABELS)) == len(cases)
    sharp = photos.cv2.imread(
        str(tmp_path / "v_phone_oppo_r7plus_13mp_sharp.jpg"), photos.cv2.IMREAD_GRAYSCALE
    )
    blurred = photos.cv2.imread(
        str(tmp_path / "v_phone_oppo_r7plus_13mp_gauss2.0.jpg"), photos.cv2.IMREAD_GRAYSCALE
    )
    assert max(sharp.shape) == 2400
    detail = [float(np.var(photos.cv2.Laplacian(image, photos.cv2.CV_32F))) for image in (sharp, blurred)]
    assert detail[1] < detail[0] / 4


def _labelled_set(folder: Path) -> Path:
    """A real sharp photo, its real out-of-focus shot, a re-saved copy and a black frame."""
    sharp = photos.real("blur_honor10_180_sharp.jpg")
    (folder / "sharp.jpg").write_bytes(sharp)
    (folder / "defocus.jpg").write_bytes(photos.real("blur_honor10_180_defocus.jpg"))
    decoded = photos.cv2.imdecode(np.frombuffer(sharp, np.uint8), photos.cv2.IMREAD_COLOR)
    (folder / "copy.jpg").write_bytes(photos.jpeg(decoded, quality=60))
    (folder / "black.jpg").write_bytes(photos.jpeg(np.zeros((1200, 1600, 3), np.uint8)))
    labels = folder / "labels.csv"
    labels.write_text(
        "file,blurred,bad_exposure,duplicate_group,reference_group,screen\n"
        "sharp.jpg,0,0,a,scene,\n"
        "defocus.jpg,1,0,,scene,\n"
        "copy.jpg,0,0,a,scene,\n"
        "black.jpg,,1,,,\n"
    )
    return labels


def test_scores_count_what_each_check_got_right_and_wrong(tmp_path: Path) -> None:
    result = evaluate(read_labels(_labelled_set(tmp_path)))
    blur, exposure, duplicate = (result["families"][n] for n in ("blur", "exposure", "duplicate"))
    assert result["photos"] == 4
    assert (blur["labelled"], blur["true_positives"], blur["true_negatives"]) == (3, 1, 2)
    assert blur["accuracy"] == 1.0 and blur["false_flags"] == 0
    assert (exposure["labelled"], exposure["true_positives"], exposure["true_negatives"]) == (4, 1, 3)
    # The two copies are found; the defocused shot of the scene and the black frame are nobody's copy.
    assert (duplicate["true_positives"], duplicate["true_negatives"], duplicate["false_flags"]) == (2, 2, 0)
    assert result["families"]["screen"]["labelled"] == 0


def test_a_wrong_answer_is_named_with_what_was_measured(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    labels.write_text(labels.read_text().replace("defocus.jpg,1,", "defocus.jpg,0,"))
    blur = evaluate(read_labels(labels))["families"]["blur"]
    assert blur["false_flags"] == 1
    assert blur["wrong"] == [
        {"file": "defocus.jpg", "expected": "not flagged", "measured": blur["wrong"][0]["measured"]}
    ]
    assert blur["wrong"][0]["measured"].startswith("fail ")


def test_the_command_prints_a_report_or_one_json_object(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    runner = CliRunner()
    text = runner.invoke(main, ["eval", "photos", "--labels", str(labels)])
    assert text.exit_code == 0, text.output
    assert "blur: accuracy 1.000" in text.output
    assert "duplicate: accuracy 1.000" in text.output
    as_json = runner.invoke(main, ["eval", "photos", "--labels", str(labels), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["families"]["exposure"]["recall"] == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,blurred\nx.jpg,1\n", "no `file` column"),
        ("file,blurred\nsharp.jpg,maybe\n", "line 2: blurred is 'maybe'"),
        ("file,blurred\nnowhere.jpg,1\n", "missing, first nowhere.jpg"),
        ("file,blurred\n,1\n", "line 2: empty `file`"),
    ],
)
def test_a_bad_labels_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "sharp.jpg").write_bytes(photos.real("blur_honor10_180_sharp.jpg"))
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    with pytest.raises(LabelsError, match=message.replace("(", r"\(")):
        read_labels(labels)
    answer = CliRunner().invoke(main, ["eval", "photos", "--labels", str(labels)])
    assert answer.exit_code == 1 and message in answer.output


def test_missing_files_say_where_they_were_looked_for_and_how_to_build_the_set(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("file,blurred\nnowhere.jpg,1\n")
    answer = CliRunner().invoke(main, ["eval", "photos", "--labels", str(labels)])
    assert answer.exit_code == 1
    assert f"from {tmp_path}" in answer.output
    assert "fieldcheck eval variants OUT" in answer.output


def test_reference_pairs_are_scored_within_and_across_groups(tmp_path: Path) -> None:
    labels = _labelled_set(tmp_path)
    (tmp_path / "other.jpg").write_bytes(photos.real("phone_nexus4_night_gps.jpg"))
    labels.write_text(labels.read_text() + "other.jpg,,,,elsewhere,\n")
    scores = evaluate(read_labels(labels))["families"]["reference_match"]
    # sharp, defocus and copy: 3 pairs that must match; each with the night photo: 3 that must not.
    assert (scores["labelled"], scores["true_positives"], scores["true_negatives"]) == (6, 3, 3)
    labels.write_text(labels.read_text().replace("other.jpg,,,,elsewhere,", "other.jpg,,,,scene,"))
    wrong = evaluate(read_labels(labels))["families"]["reference_match"]
    assert wrong["false_negatives"] == 3
    assert all(" ~ " in w["file"] and "points" in w["measured"] for w in wrong["wrong"])


def test_the_face_labels_are_whole_and_split_once() -> None:
    """eval/faces: every labelled photo reviewed and traceable to its source; the halves fixed."""
    from fieldcheck.tools import faces

    labelled = faces.load_labels()
    assert len(labelled) == 194
    assert sum(len(p.faces) + len(p.depicted) + len(p.doubtful) for p in labelled) == 206
    halves = {p.half for p in labelled}
    assert halves == {"calibration", "test"}
    for photo in labelled:
        for x, y, w, h in [*photo.faces, *photo.depicted, *photo.doubtful]:
            assert x >= 0 and y >= 0 and w > 0 and h > 0, photo.file


def test_a_labelled_photo_is_found_in_a_checkout_of_its_repository(tmp_path: Path) -> None:
    from fieldcheck.tools import faces

    source = tmp_path / "jpg" / "Apple iPhone 4.jpg"
    source.parent.mkdir()
    source.write_bytes(b"jpeg")
    assert faces.photo_path(tmp_path, "002_Apple_iPhone_4.jpg") == source
    named = tmp_path / "002_Apple_iPhone_4.jpg"
    named.write_bytes(b"jpeg")
    assert faces.photo_path(tmp_path, "002_Apple_iPhone_4.jpg") == named


def test_blurring_is_scored_by_the_share_of_each_face_covered() -> None:
    from fieldcheck.tools import faces

    photo = faces.Labelled("001_x.jpg", faces=[(100, 100, 80, 100)], doubtful=[(400, 400, 20, 20)])
    covered = faces.Score()
    covered.add(photo, (800, 800), [(110, 110, 60, 80), (402, 402, 16, 16)], 1.0)
    assert (covered.blurred, covered.faces, covered.false_detections) == (1, 1, 0)
    missed = faces.Score()
    missed.add(photo, (800, 800), [(150, 150, 20, 20), (600, 50, 40, 40)], 1.0)
    assert (missed.blurred, missed.false_detections, missed.photos_with_false) == (0, 1, 1)
