"""Collections and fields as plain data: what ``_collections`` stores and the API returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RULE_NAMES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")
AUTH_RULE_NAMES = ("authRule", "manageRule")
MULTI_TYPES = frozenset({"select", "file", "relation"})


@dataclass
class Field:
    """One field of a collection. ``options`` holds every type-specific key (incl. required, help)."""

    id: str
    name: str
    type: str
    system: bool = False
    hidden: bool = False
    presentable: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return bool(self.options.get("required", False))

    @property
    def multiple(self) -> bool:
        """True when the stored value is a JSON array (select/file/relation with maxSelect > 1)."""
        return self.type in MULTI_TYPES and int(self.options.get("maxSelect") or 1) > 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hidden": self.hidden,
            "id": self.id,
            "name": self.name,
            "presentable": self.presentable,
            "system": self.system,
            "type": self.type,
        }
        out.update(self.options)
        return dict(sorted(out.items()))


@dataclass
class Collection:
    id: str
    name: str
    type: str = "base"
    system: bool = False
    fields: list[Field] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    rules: dict[str, str | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # auth options / viewQuery
    created: str = ""
    updated: str = ""
    #: runtime only, never stored or sent: what seals the encrypted fields (``store.encryption``),
    #: set by the collection store on collections that have one
    cipher: Any = field(default=None, repr=False, compare=False)

    def get_field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def rule(self, name: str) -> str | None:
        return self.rules.get(name)

    @property
    def is_auth(self) -> bool:
        return self.type == "auth"

    @property
    def is_view(self) -> bool:
        return self.type == "view"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        for r in RULE_NAMES:
            out[r] = self.rules.get(r)
        out.update(
            {
                "name": self.name,
                "type": self.type,
                "fields": [f.to_dict() for f in self.fields],
                "indexes": list(self.indexes),
                "created": self.created,
                "updated": self.updated,
                "system": self.system,
            }
        )
        if self.type == "view":
            out["viewQuery"] = self.options.get("viewQuery", "")
        if self.type == "auth":
            out["authRule"] = self.rules.get("authRule", "")
            out["manageRule"] = self.rules.get("manageRule")
            for key, value in self.options.items():
                out[key] = public_option(key, value)
        return out


def public_option(key: str, value: Any) -> Any:
    """Auth options without their write-only secrets."""
    if isinstance(value, dict) and "secret" in value:
        return {k: v for k, v in value.items() if k != "secret"}
    if key == "oauth2" and isinstance(value, dict):
        providers = [{k: v for k, v in p.items() if k != "clientSecret"} for p in value.get("providers", [])]
        return {**value, "providers": providers}
    return value
