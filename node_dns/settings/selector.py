"""Kubernetes label selectors (``kubectl get -l`` syntax), checked before they reach the apiserver.

The apiserver would refuse a bad selector too, but only once the watch starts and as an HTTP 400;
checking at startup makes it one line naming the flag and exit 2. The grammar is the one of
``labels.Parse`` in Kubernetes' apimachinery::

    selector    := requirement ("," requirement)*
    requirement := ["!"] key
                 | key ("=" | "==" | "!=") value
                 | key ("in" | "notin") "(" [value ("," value)*] ")"
                 | key ("<" | ">") integer

Keys are qualified names (``[prefix/]name``: a DNS subdomain of at most 253 characters, a name
of at most 63 of ``A-Za-z0-9-_.`` starting and ending alphanumeric); values are empty or such a
name. The selector is returned normalised (spaces around operators removed), as sent.
"""

from __future__ import annotations

import re

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_NAME_RE = re.compile(f"^{_NAME}$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s=!(),<>]+)")


def _key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX_RE.match(prefix)):
        raise ValueError(f"label key {key!r} has an invalid prefix (a lower-case DNS subdomain)")
    if not _NAME_RE.match(name):
        raise ValueError(
            f"label key {key!r} is invalid (at most 63 of A-Za-z0-9-_. starting and ending alphanumeric)"
        )
    return key


def _value(value: str) -> str:
    if value and not _NAME_RE.match(value):
        raise ValueError(
            f"label value {value!r} is invalid (at most 63 of A-Za-z0-9-_. starting and ending alphanumeric)"
        )
    return value


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:  # pragma: no cover - the pattern matches any non-space character
            raise ValueError(f"unexpected {text[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, what: str) -> str:
        token = self.peek()
        if token is None:
            raise ValueError(f"expected {what} at the end")
        self.index += 1
        return token

    def requirement(self) -> str:
        token = self.take("a label key")
        if token == "!":
            return "!" + _key(self.take("a label key after '!'"))
        key = _key(token)
        operator = self.peek()
        if operator in (None, ","):
            return key
        self.index += 1
        if operator in ("=", "==", "!="):
            value = self.peek()
            if value in (None, ","):
                return f"{key}{operator}"  # an empty value is allowed
            self.index += 1
            return f"{key}{operator}{_value(value)}"
        if operator in ("in", "notin"):
            if self.take("'(' after " + operator) != "(":
                raise ValueError(f"expected '(' after {key} {operator}")
            values: list[str] = []
            token = self.take("')'")
            while token != ")":
                values.append(_value(token))
                separator = self.take("',' or ')'")
                if separator not in (",", ")"):
                    raise ValueError(f"expected ',' or ')' in the values of {key}, got {separator!r}")
                token = separator if separator == ")" else self.take("a value")
            return f"{key} {operator} ({','.join(values)})"
        if operator in ("<", ">"):
            number = self.take(f"an integer after {key} {operator}")
            if not re.fullmatch(r"-?\d+", number):
                raise ValueError(f"{key} {operator} needs an integer, got {number!r}")
            return f"{key}{operator}{number}"
        raise ValueError(f"unexpected {operator!r} after label key {key!r}")


def label_selector(text: str) -> str:
    """``text`` checked and normalised; ``ValueError`` naming what is wrong."""
    parser = _Parser(text)
    if parser.peek() is None:
        return ""
    parts = [parser.requirement()]
    while parser.peek() is not None:
        if parser.take("','") != ",":
            raise ValueError(f"expected ',' between requirements, got {parser.tokens[parser.index - 1]!r}")
        parts.append(parser.requirement())
    return ",".join(parts)
