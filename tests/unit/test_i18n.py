"""French and English: the catalogues agree with the code, and texts are rendered per language."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from fieldcheck import i18n
from fieldcheck.i18n import Text, _, negotiate, render, text

SOURCE = Path(i18n.__file__).parent
TEMPLATE = i18n.LOCALE_DIR / "messages.pot"
FRENCH = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po"


def _in_code() -> set[str]:
    found = extract_from_dir(str(SOURCE), method_map=[("**.py", "python")], keywords={"_": None})
    return {message for _file, _line, message, _comments, _context in found if isinstance(message, str)}


def _catalogue(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        return {str(m.id): str(m.string or "") for m in read_po(handle) if m.id and not m.fuzzy}


def _fields(message: str) -> list[tuple[str, str]]:
    return sorted(
        (name, spec or "") for _text, name, spec, _conv in string.Formatter().parse(message) if name
    )


def test_every_message_of_the_code_is_in_the_template_and_translated_into_french() -> None:
    code = _in_code()
    assert len(code) > 100  # the extraction found the code's messages
    template, french = set(_catalogue(TEMPLATE)), _catalogue(FRENCH)
    assert code - template == set(), "new messages: run ./scripts/messages, then translate them"
    assert template - code == set(), "messages no longer in the code: run ./scripts/messages"
    untranslated = sorted(m for m in code if not french.get(m))
    assert untranslated == [], "French translations missing (locale/fr/LC_MESSAGES/messages.po)"
    assert set(french) - code == set(), "stale French messages: run ./scripts/messages"


def test_each_translation_keeps_the_placeholders_of_its_message() -> None:
    translations = {m: t for m, t in _catalogue(FRENCH).items() if t}
    assert translations
    for message, translated in translations.items():
        assert _fields(translated) == _fields(message), message


def test_the_language_is_negotiated_from_accept_language() -> None:
    assert negotiate(None) == "en"
    assert negotiate("fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert negotiate("de-DE, en;q=0.5, fr;q=0.7") == "fr"
    assert negotiate("de, it") == "en"  # neither: English
    assert negotiate("fr;q=0, en") == "en"  # refused
    assert negotiate("*") == "en"
    assert negotiate("fr-CA") == "fr"


def test_numbers_are_written_as_each_language_writes_them() -> None:
    width = text(_("{width:.2f} px"), width=1.8449)
    assert width.render("en") == "1.84 px"
    assert width.render("fr") == "1,84 px"
    share = text(_("{share:.0%} of {windows} parts"), share=0.25, windows=12)
    assert share.render("en") == "25% of 12 parts"
    assert share.render("fr") == "25\u00a0% de 12 parties"
    assert render(_("at most {limit} bytes"), {"limit": 26214400}, "en") == "at most 26214400 bytes"


def test_a_text_survives_storage_and_renders_its_nested_texts() -> None:
    nested = text(_("a {what} of at most {limit:.0f} MP"), what=text(_("progressive JPEG")), limit=21.6)
    stored = Text.from_json(nested.as_json())
    assert stored == nested
    assert stored.render("en") == "a progressive JPEG of at most 22 MP"
    assert stored.render("fr") == "un JPEG progressif d'au plus 22 Mpx"


def test_the_current_language_is_the_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    token = i18n.language_var.set("fr")
    try:
        assert text(_("The photo is sharp.")).render() == "La photo est nette."
        assert text(_("The photo is sharp.")).english == "The photo is sharp."
    finally:
        i18n.language_var.reset(token)
    assert text(_("The photo is sharp.")).render() == "The photo is sharp."
    assert render("a message no catalogue knows", {}, "fr") == "a message no catalogue knows"
