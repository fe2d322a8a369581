"""The built-in collections and the default options of auth collections (ids as PocketBase's)."""

from __future__ import annotations

import copy
from typing import Any

from ..core.ids import field_id, random_string
from .models import Collection, Field


def _template_body(*paragraphs: str) -> str:
    """PocketBase 0.40's default email body: greeting, paragraphs, signature."""
    return "\n".join(("<p>Hello,</p>", *paragraphs, "<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>"))


def _button(path: str, label: str) -> str:
    return (f'<p>\n  <a class="btn" href="{{APP_URL}}/_/#/auth/{path}/{{TOKEN}}" target="_blank" '
            f'rel="noopener">{label}</a>\n</p>')


AUTH_OPTION_DEFAULTS: dict[str, Any] = {
    "authAlert": {"enabled": True, "emailTemplate": {
        "subject": "Login from a new location",
        "body": _template_body(
            "<p>We noticed a login to your {APP_NAME} account from a new location:</p>",
            "<p><em>{ALERT_INFO}</em></p>",
            "<p><strong>If this wasn't you, you should immediately change your {APP_NAME} account password to "
            "revoke access from all other locations.</strong></p>",
            "<p>If this was you, you may disregard this email.</p>")}},
    "oauth2": {"providers": [], "mappedFields": {"id": "", "name": "", "username": "", "avatarURL": ""},
               "enabled": False},
    "passwordAuth": {"enabled": True, "identityFields": ["email"]},
    "mfa": {"enabled": False, "duration": 600, "rule": ""},
    "otp": {"enabled": False, "duration": 180, "length": 8, "emailTemplate": {
        "subject": "OTP for {APP_NAME}",
        "body": _template_body(
            "<p>Your one-time password is: <strong>{OTP}</strong></p>",
            "<p><i>If you didn't ask for the one-time password, you can ignore this email.</i></p>")}},
    "authToken": {"duration": 432000},
    "passwordResetToken": {"duration": 1800},
    "emailChangeToken": {"duration": 1800},
    "verificationToken": {"duration": 86400},
    "fileToken": {"duration": 180},
    "verificationTemplate": {"subject": "Verify your {APP_NAME} email", "body": _template_body(
        "<p>Thank you for joining us at {APP_NAME}.</p>",
        "<p>Click on the button below to verify your email address.</p>",
        _button("confirm-verification", "Verify"),
        "<p><i>If you didn't recently register, please ignore this email.</i></p>")},
    "resetPasswordTemplate": {"subject": "Reset your {APP_NAME} password", "body": _template_body(
        "<p>Click on the button below to reset your password.</p>",
        _button("confirm-password-reset", "Reset password"),
        "<p><i>If you didn't ask to reset your password, please ignore this email.</i></p>")},
    "confirmEmailChangeTemplate": {"subject": "Confirm your {APP_NAME} new email address", "body": _template_body(
        "<p>Click on the button below to confirm your new email address.</p>",
        _button("confirm-email-change", "Confirm new email"),
        "<p><i>If you didn't ask to change your email address, please ignore this email.</i></p>")},
}
TOKEN_KEYS = ("authToken", "passwordResetToken", "emailChangeToken", "verificationToken", "fileToken")
SECRET_OPTION = "secret"  # write-only, never output


def auth_option_defaults() -> dict[str, Any]:
    opts = copy.deepcopy(AUTH_OPTION_DEFAULTS)
    for key in TOKEN_KEYS:
        opts[key][SECRET_OPTION] = random_string(50)
    return opts


def mk_field(name: str, ftype: str, *, system: bool = False, hidden: bool = False, **options: Any) -> Field:
    from .fields import get_type

    handler = get_type(ftype)
    assert handler is not None
    opts = handler.option_defaults()
    opts.update(options)
    return Field(id=field_id(ftype, name), name=name, type=ftype, system=system, hidden=hidden, options=opts)


def id_field() -> Field:
    return mk_field("id", "text", system=True, primaryKey=True, required=True, min=15, max=15,
                    pattern="^[a-z0-9]+$", autogeneratePattern="[a-z0-9]{15}")


def autodate_fields(system: bool) -> list[Field]:
    return [mk_field("created", "autodate", system=system, onCreate=True, onUpdate=False),
            mk_field("updated", "autodate", system=system, onCreate=True, onUpdate=True)]


def auth_system_fields() -> list[Field]:
    return [
        mk_field("password", "password", system=True, hidden=True, required=True, min=8, cost=0),
        mk_field("tokenKey", "text", system=True, hidden=True, required=True, min=30, max=60,
                 autogeneratePattern="[a-zA-Z0-9]{50}"),
        mk_field("email", "email", system=True, required=True),
        mk_field("emailVisibility", "bool", system=True),
        mk_field("verified", "bool", system=True),
    ]


def auth_indexes(table: str, suffix: str) -> list[str]:
    """The unique tokenKey/email indexes of an auth collection, named ``idx_<field>_<suffix>``."""
    return [auth_index("tokenKey", table, suffix), auth_index("email", table, suffix)]


def auth_index(column: str, table: str, suffix: str) -> str:
    where = f" WHERE `{column}` != ''" if column == "email" else ""
    return f"CREATE UNIQUE INDEX `idx_{column}_{suffix}` ON `{table}` (`{column}`){where}"


_INTERNAL_RULE = "@request.auth.id != '' && recordRef = @request.auth.id && collectionRef = @request.auth.collectionId"


def builtin_collections(now: str) -> list[Collection]:
    su_opts = auth_option_defaults()
    su_opts["authToken"]["duration"] = 86400
    superusers = Collection(
        id="pbc_3142635823", name="_superusers", type="auth", system=True,
        fields=[id_field(), *auth_system_fields(), *autodate_fields(True)],
        indexes=auth_indexes("_superusers", "pbc_3142635823"),
        rules={r: None for r in ("listRule", "viewRule", "createRule", "updateRule", "deleteRule",
                                 "authRule", "manageRule")},
        options=su_opts, created=now, updated=now,
    )
    superusers.rules["authRule"] = ""
    users_opts = auth_option_defaults()
    users_opts["oauth2"]["mappedFields"].update({"name": "name", "avatarURL": "avatar"})
    owner = "id = @request.auth.id"
    users = Collection(
        id="_pb_users_auth_", name="users", type="auth", system=False,
        fields=[id_field(), *auth_system_fields(), mk_field("name", "text", max=255),
                mk_field("avatar", "file", maxSelect=1,
                         mimeTypes=["image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"]),
                *autodate_fields(False)],
        indexes=auth_indexes("users", "_pb_users_auth_"),
        rules={"listRule": owner, "viewRule": owner, "createRule": "", "updateRule": owner,
               "deleteRule": owner, "authRule": "", "manageRule": None},
        options=users_opts, created=now, updated=now,
    )
    out = [superusers, users]
    internal = [
        ("_mfas", "pbc_2279338944", [("method", "text", {"required": True})], False,
         ["CREATE INDEX `idx_mfas_collectionRef_recordRef` ON `_mfas` (collectionRef,recordRef)"]),
        ("_otps", "pbc_1638494021", [("password", "password", {"required": True, "hidden": True, "cost": 8}),
                                     ("sentTo", "text", {"hidden": True})], False,
         ["CREATE INDEX `idx_otps_collectionRef_recordRef` ON `_otps` (collectionRef, recordRef)"]),
        ("_externalAuths", "pbc_2281828961", [("provider", "text", {"required": True}),
                                              ("providerId", "text", {"required": True})], True,
         ["CREATE UNIQUE INDEX `idx_externalAuths_record_provider` ON `_externalAuths` "
          "(collectionRef, recordRef, provider)",
          "CREATE UNIQUE INDEX `idx_externalAuths_collection_provider` ON `_externalAuths` "
          "(collectionRef, provider, providerId)"]),
        ("_authOrigins", "pbc_4275539003", [("fingerprint", "text", {"required": True})], True,
         ["CREATE UNIQUE INDEX `idx_authOrigins_unique_pairs` ON `_authOrigins` "
          "(collectionRef, recordRef, fingerprint)"]),
    ]
    for name, cid, extra, deletable, indexes in internal:
        fields = [id_field(), mk_field("collectionRef", "text", system=True, required=True),
                  mk_field("recordRef", "text", system=True, required=True)]
        for fname, ftype, opts in extra:
            hidden = bool(opts.pop("hidden", False))
            fields.append(mk_field(fname, ftype, system=True, hidden=hidden, **opts))
        fields += autodate_fields(True)
        out.append(Collection(
            id=cid, name=name, type="base", system=True, fields=fields, indexes=indexes,
            rules={"listRule": _INTERNAL_RULE, "viewRule": _INTERNAL_RULE, "createRule": None,
                   "updateRule": None, "deleteRule": _INTERNAL_RULE if deletable else None},
            created=now, updated=now,
        ))
    return out
