"""Both catalogues hold the same keys, and every key a template uses exists."""

from __future__ import annotations

import re
from importlib import resources

from nettrial.web.i18n import catalogue


def test_every_key_is_translated():
    english, chinese = catalogue("en"), catalogue("zh")
    assert set(english) == set(chinese)
    assert all(isinstance(v, str) and v.strip() for v in (*english.values(), *chinese.values()))


def test_every_literal_key_in_the_templates_exists():
    folder = resources.files("nettrial.web") / "templates"
    used = set()
    for template in folder.iterdir():
        used |= set(re.findall(r"""_\(\s*["']([\w.]*\w)["']\s*[,)]""", template.read_text(encoding="utf-8")))
    assert used - set(catalogue("en")) == set()
