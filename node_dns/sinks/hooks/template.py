"""Templates: compiled once at startup in Jinja2's immutable sandbox, rendered per publication.

The sandbox keeps a template from calling into Python beyond reading the context, and
``StrictUndefined`` turns a misspelt key into an error instead of an empty string in a load
balancer's config. There is no loader, so ``{% include %}`` and ``{% import %}`` are unavailable:
a template reads nothing but its context. ``trim_blocks`` and ``lstrip_blocks`` are on, because
config files are line oriented: a ``{% for %}`` line leaves no blank line behind.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import sandbox


class TemplateError(ValueError):
    """A template failed to compile or to render; ``line`` is the template line when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"template line {self.line}: {self.message}" if self.line else f"template: {self.message}"

    @property
    def kind(self) -> str:
        """What the error is, without the parts that differ per render (for log-once)."""
        return str(self)


def environment() -> sandbox.ImmutableSandboxedEnvironment:
    return sandbox.ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Template:
    """One compiled template; :meth:`render` gives bytes or raises :class:`TemplateError`."""

    name: str
    compiled: jinja2.Template

    def render(self, context: Mapping[str, Any]) -> bytes:
        try:
            return self.compiled.render(context).encode("utf-8")
        except Exception as error:
            raise self._error(error) from None

    def _error(self, error: Exception) -> TemplateError:
        if isinstance(error, jinja2.TemplateError):
            return TemplateError(_message(error), _render_line(error, self.name))
        # a filter on the wrong type: TypeError, ValueError, ...
        return TemplateError(f"{type(error).__name__}: {error}", _render_line(error, self.name))


def compile_template(name: str, source: str, env: jinja2.Environment | None = None) -> Template:
    """Compile ``source``; a syntax error raises :class:`TemplateError` with its line."""
    env = env or environment()
    try:
        compiled = env.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(error.message or "syntax error", error.lineno) from None
    # from_string names the template "<template>"; the traceback lines carry that name.
    return Template("<template>", compiled)


def _message(error: jinja2.TemplateError) -> str:
    if isinstance(error, jinja2.UndefinedError):
        return f"undefined: {error.message}"
    return error.message or type(error).__name__


def _render_line(error: BaseException, name: str) -> int | None:
    """The template line of the innermost frame that belongs to the template."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == name:
            line = frame.lineno
    return line
