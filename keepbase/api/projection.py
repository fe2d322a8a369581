"""``?fields=`` projection: comma-separated dotted paths, ``*`` wildcards, ``:excerpt(n[,true])``."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import orjson

_EXCERPT_RE = re.compile(r"^(?P<path>[^:]+):excerpt\((?P<max>\d+)(?:\s*,\s*(?P<ell>\w+))?\)$")
_SKIP_TAGS = {"script", "style", "img", "svg", "iframe", "input", "textarea", "select", "button", "noscript"}
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
               "table", "section", "article", "blockquote", "pre", "hr", "header", "footer"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self.skip:
            self.skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def excerpt(value: str, max_len: int, ellipsis: bool) -> str:
    p = _Text()
    p.feed(value)
    text = " ".join("".join(p.parts).split())
    if len(text) > max_len:
        return text[:max_len].strip() + ("..." if ellipsis else "")
    return text


def _split_paths(fields: str) -> list[str]:
    """Split on commas outside parentheses: ``*,body:excerpt(20,true)`` is two paths."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(fields):
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == "," and not depth:
            parts.append(fields[start:i])
            start = i + 1
    parts.append(fields[start:])
    return parts


def _parse(fields: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for raw in _split_paths(fields):
        raw = raw.strip()
        if not raw:
            continue
        mod = None
        m = _EXCERPT_RE.match(raw)
        if m:
            raw = m.group("path")
            ell = (m.group("ell") or "").lower() in ("1", "t", "true")
            mod = (int(m.group("max")), ell)
        node = tree
        parts = raw.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = mod if mod else node.get(parts[-1], True)
    return tree


def _apply(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, orjson.Fragment):
        value = orjson.loads(orjson.dumps(value))  # Fragment exposes no accessor for its text
    if isinstance(value, list):
        return [_apply(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    if "*" in tree:
        out.update(value)
    for key, sub in tree.items():
        if key == "*" or key not in value:
            continue
        v = value[key]
        if sub is True:
            out[key] = v
        elif isinstance(sub, tuple):
            out[key] = excerpt(v, sub[0], sub[1]) if isinstance(v, str) else v
        else:
            out[key] = _apply(v, sub)
    return out


def project(data: Any, fields: str, *, is_list: bool = False) -> Any:
    tree = _parse(fields)
    if not tree:
        return data
    if is_list and isinstance(data, dict) and "items" in data:
        return {**data, "items": [_apply(item, tree) for item in data["items"]]}
    return _apply(data, tree)
