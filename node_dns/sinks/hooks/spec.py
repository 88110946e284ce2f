"""The hooks file: what to render, where to write it and what to run after.

The file is YAML with one key, ``hooks:``, a list of hooks. The key names are the interface the
README documents; a misspelt key is an error rather than a silently ignored setting. Loading
reads every ``template_file`` too, so after :func:`load` nothing is left to read from disk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

DEFAULT_DEBOUNCE = 0.2
DEFAULT_TIMEOUT = 30.0


class HookConfigError(ValueError):
    """The hooks file cannot be used; the message is one line naming the hook and the problem."""


class HookSpec(BaseModel):
    """One hook as written in the file (``template_file`` already read into ``template``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Names the hook in logs and metric labels.")
    template: str | None = Field(None, description="Jinja2 template text (or template_file).")
    template_file: str | None = Field(
        None, description="Path of the template, relative to the hooks file's directory."
    )
    output: str = Field(description="File the rendered text is written to (atomically).")
    command: tuple[str, ...] | None = Field(
        None, description="argv run after each write; no shell unless you write one."
    )
    timeout: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = Field(
        DEFAULT_TIMEOUT, description="Seconds the command may run before its process group is killed."
    )
    debounce: Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)] = Field(
        DEFAULT_DEBOUNCE, description="Seconds changes are gathered before one render."
    )
    min_nodes: Annotated[int, Field(ge=0)] = Field(
        0, description="Keep the last good file while fewer nodes than this are healthy."
    )
    leader_only: bool = Field(False, description="Run only on the elected leader.")
    retry_max: Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)] = Field(
        60.0, description="Longest pause, seconds, between retries of a failing command."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("name must be 1-63 characters of letters, digits, '_', '.', '-'")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("command must be a non-empty list (argv)")
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        if not value or value.endswith("/"):
            raise ValueError("output must be a file path")
        return value

    @model_validator(mode="after")
    def _one_template(self) -> HookSpec:
        if (self.template is None) == (self.template_file is None):
            raise ValueError("give exactly one of template and template_file")
        return self


class HooksFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hooks: tuple[HookSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> HooksFile:
        names = [hook.name for hook in self.hooks]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"hook names must be unique: {', '.join(twice)}")
        outputs = [str(Path(hook.output)) for hook in self.hooks]
        shared = sorted({out for out in outputs if outputs.count(out) > 1})
        if shared:
            raise ValueError(f"two hooks write the same output: {', '.join(shared)}")
        return self


def _describe(error: ValidationError, data: object) -> str:
    item = error.errors()[0]
    loc = list(item["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "hooks" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        if isinstance(data, dict) and isinstance(data.get("hooks"), list) and index < len(data["hooks"]):
            entry = data["hooks"][index]
            name = entry.get("name") if isinstance(entry, dict) else None
        where = f"hook {name!r}" if isinstance(name, str) else f"hooks[{index}]"
        loc = loc[2:]
    key = ".".join(str(part) for part in loc)
    msg = item["msg"].removeprefix("Value error, ")
    if item["type"] == "missing":
        msg = "is required"
    elif item["type"] == "extra_forbidden":
        msg = "is not a known key"
    parts = [p for p in (where, key) if p]
    return f"{' '.join(parts)}: {msg}" if parts else msg


def parse(text: str, base: Path) -> tuple[HookSpec, ...]:
    """Hooks from the file's text; ``template_file`` paths are read relative to ``base``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise HookConfigError(f"not valid YAML{line}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise HookConfigError("must be a mapping with a 'hooks' list")
    try:
        parsed = HooksFile.model_validate(data)
    except ValidationError as error:
        raise HookConfigError(_describe(error, data)) from None
    hooks = []
    for hook in parsed.hooks:
        if hook.template_file is None:
            hooks.append(hook)
            continue
        path = base / hook.template_file
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise HookConfigError(f"hook {hook.name!r}: template_file {path}: {reason}") from None
        hooks.append(hook.model_copy(update={"template": text}))
    return tuple(hooks)


def load(path: str | Path) -> tuple[HookSpec, ...]:
    """Read and validate the hooks file; raises :class:`HookConfigError` with one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise HookConfigError(f"cannot read {path}: {reason}") from None
    return parse(text, path.parent)
