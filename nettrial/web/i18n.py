"""Page text in English and Simplified Chinese (the study site's language), one catalogue per language.

The catalogues are data (``i18n/<lang>.yaml``); a key missing from a catalogue falls back to English,
and a key missing from English is a bug the tests catch (``test_every_key_is_translated``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from nettrial._yaml import load_yaml

LANGUAGES = ("en", "zh")


@cache
def catalogue(language: str) -> dict[str, str]:
    path = resources.files("nettrial.web") / "i18n" / f"{language}.yaml"
    return load_yaml(path.read_text(encoding="utf-8"))


def translate(key: str, language: str = "en", **values: Any) -> str:
    """The text for ``key`` in ``language`` (English when untranslated), with ``{name}`` filled in."""
    text = catalogue(language if language in LANGUAGES else "en").get(key) or catalogue("en").get(key)
    if text is None:
        raise KeyError(f"no text for {key!r}")
    return text.format(**values) if values else text
