"""Declarative checking of policies.toml sections with pydantic, errors at file:line:key.

Each package owns the schema of its own sections (``config`` the server, targets and
limits; ``policy`` the rules and tests; ...) as ``Section`` models and checks its part
of the file with ``check``. A section model forbids unknown keys, never coerces types
(a string is not a number, a number is not true), and types closed vocabularies with
``Literal`` so a typo is an error, never a rule that silently matches nothing. Every
failure becomes a ``ConfigError`` naming the file, the line of the key and the dotted
key, with pydantic's wording translated into one sentence.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .tomlsource import KeyPath, TomlSource

__all__ = ["Section", "check", "describe_error"]

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """Base of every policies.toml table: unknown keys and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_PLAIN = {
    "missing": "missing required key",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


def describe_error(error: dict[str, Any]) -> str:
    """One sentence for one pydantic error."""
    kind = error.get("type", "")
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}, not {error.get('input')!r}"
    ctx = error.get("ctx", {})
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}, not {error.get('input')!r}"
    if kind == "string_pattern_mismatch":
        return f"{error.get('input')!r} is not a valid name here"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("value_error", "assertion_error"):
        ctx = error.get("ctx", {})
        return str(ctx.get("error", error.get("msg", "invalid value")))
    msg = str(error.get("msg", "invalid value"))
    return msg[:1].lower() + msg[1:]


def check(source: TomlSource, model: type[M], data: Any, where: KeyPath = ()) -> M:
    """Validate ``data`` (the table found at ``where`` in ``source``) against ``model``.

    Raises ConfigError for the first problem, naming its line and key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(p for p in first.get("loc", ()) if isinstance(p, (str, int)))
        # pydantic names the member of a union it tried ("function-after[...]"): drop it
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        raise source.error(where + loc, describe_error(dict(first))) from None
