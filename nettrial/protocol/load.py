"""Read a protocol file: resolve ``$setting`` references, validate, and name every problem.

A malformed file fails with the file, the path of the field and what was expected, e.g.
``nct07279532.yaml: eligibility.criteria.4.rule.all.1.op: Input should be '<', '<=', ...``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nettrial._yaml import load_yaml
from nettrial.exceptions import RuleDataError
from nettrial.protocol.model import Protocol

BUILT_IN = {"nct07279532": "nct07279532.yaml"}


def _resolve(node: Any, settings: dict[str, Any], path: str, where: str) -> Any:
    """Replace every ``$name`` string by the value of setting ``name``."""
    if isinstance(node, str) and node.startswith("$"):
        name = node[1:]
        if name not in settings:
            raise RuleDataError(where, f"{path}: unknown setting {node!r} (settings: {', '.join(settings)})")
        return settings[name]["value"]
    if isinstance(node, dict):
        return {k: _resolve(v, settings, f"{path}.{k}" if path else str(k), where) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, settings, f"{path}.{i}", where) for i, v in enumerate(node)]
    return node


def file_path(data: Any, location: tuple[Any, ...]) -> list[Any]:
    """The path of a validation error as written in the file.

    Pydantic's path also holds the tags of the rule-node unions (``all``, ``check``, ``lab``);
    walking the data keeps only the steps that exist in it. A key whose value is a plain text
    (the ``check: lab`` tag) is a step only when it is the last one.
    """
    path, node = [], data
    for depth, step in enumerate(location):
        last = depth == len(location) - 1
        if isinstance(node, dict) and step == "if_":
            step = "if"  # the model's name for the file's `if`
        in_dict = isinstance(node, dict) and step in node and (last or isinstance(node[step], dict | list))
        in_list = isinstance(node, list) and isinstance(step, int) and step < len(node)
        if in_dict or in_list:
            path.append(step)
            node = node[step]
        elif last:
            path.append(step)
    return path


def parse_protocol(text: str, where: str) -> Protocol:
    """Validate protocol text; ``where`` names the file in errors."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RuleDataError(where, f"is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleDataError(where, "must be a mapping with identity, treatment, eligibility, ...")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict) or not all(
        isinstance(v, dict) and "value" in v for v in settings.values()
    ):
        raise RuleDataError(where, "settings: each setting needs a value and a source")
    body = {k: v if k == "settings" else _resolve(v, settings, k, where) for k, v in data.items()}
    try:
        return Protocol.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in file_path(body, first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RuleDataError(where, f"{location}: {first['msg']}{more}") from exc


def load_protocol(source: str | Path = "nct07279532") -> Protocol:
    """A built-in protocol by name, or a protocol file by path."""
    if isinstance(source, str) and source in BUILT_IN:
        return _built_in(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleDataError(str(path), f"cannot be read: {exc}") from exc
    return parse_protocol(text, path.name)


@cache
def _built_in(name: str) -> Protocol:
    resource = resources.files("nettrial.protocol") / "protocols" / BUILT_IN[name]
    return parse_protocol(resource.read_text(encoding="utf-8"), BUILT_IN[name])
