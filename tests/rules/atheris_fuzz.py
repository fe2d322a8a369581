"""Coverage-guided fuzzing (atheris/libFuzzer) of the filter and sort language, end to end.

Each input is split into a filter and a sort and sent through the whole list path of a real
keepbase app on SQLite: parser, compiler, resolver (relations, back-relations, json paths,
``@request``/``@collection`` operands) and the SQL it runs. The only outcome allowed besides
success is the API's own 400 error; anything else (another exception, another status) makes
the fuzzer stop with a crash report and a non-zero exit status.

    python3 tests/rules/atheris_fuzz.py -runs=5000 -max_len=400     # bounded run
    python3 tests/rules/atheris_fuzz.py CORPUS_DIR                   # open-ended

``tests/rules/test_parser_fuzz.py`` runs a bounded session as part of the test suite.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["keepbase"]):
    from keepbase.app import App, create_app
    from keepbase.core.config import Config
    from keepbase.core.errors import ApiError
    from keepbase.core.types import AuthInfo, RequestInfo
    from keepbase.store.records import ListParams

SEEDS = [
    b"title ~ 'a' && views > 1",
    b"author.name = 'x' || tags ?= 'red'",
    b"meta.a.b = 1 && @request.auth.id != ''",
    b"posts_via_author.title:lower ?~ 'x'",
    b"@collection.posts:p.author = id && created >= @todayStart\x01-created,@random",
    b"tags:length > 1 && tags:each ~ 'e' && strftime('%Y', created) = '2026'",
    b"(((views = 1)))\x01title,-views",
]


TOKENS = ["title", "views", "draft", "meta.a.b", "tags", "tags:each", "tags:length", "author.name",
          "author.user.email", "posts_via_author", "created", "id", "@request.auth.id", "@request.query.q",
          "@request.headers.x_token", "@request.body.title:isset", "@request.body.title:changed",
          "@collection.authors:a.name", "@now", "@todayStart", "@yesterday", ":lower", "'x'", '"y"', "null",
          "true", "false", "1.5", "-3", "=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?~",
          "&&", "||", "(", ")", "strftime(", "geoDistance(", ",", "//", "\\x01", "-", "+", "@random", "@rowid"]


def build_app(folder: str) -> tuple[App, RequestInfo]:
    app = create_app(Config(dir=folder, sqlite_readers=1))
    users = app.collections.get("users")
    app.collections.create({"name": "authors", "type": "base", "listRule": "", "viewRule": "", "fields": [
        {"name": "name", "type": "text"}, {"name": "user", "type": "relation", "collectionId": users.id}]})
    authors = app.collections.get("authors")
    app.collections.create({"name": "posts", "type": "base", "listRule": "views >= 0", "fields": [
        {"name": "title", "type": "text"}, {"name": "views", "type": "number"},
        {"name": "draft", "type": "bool"}, {"name": "meta", "type": "json"},
        {"name": "tags", "type": "select", "maxSelect": 3, "values": ["red", "green", "blue"]},
        {"name": "author", "type": "relation", "collectionId": authors.id},
        {"name": "created", "type": "autodate", "onCreate": True}]})
    posts = app.collections.get("posts")
    root = RequestInfo(auth=None, context="default")
    for i in range(3):
        a = app.records.create_record(authors, {"name": f"author {i}"}, root_info(root))
        app.records.create_record(posts, {"title": f"post {i}", "views": i, "meta": {"a": {"b": i}},
                                          "tags": ["red", "blue"][: i + 1], "author": a["id"]}, root_info(root))
    guest = RequestInfo(query={"q": "1"}, headers={"x_token": "t"}, body={"title": "b"})
    return app, guest


def root_info(base: RequestInfo) -> RequestInfo:
    su = AuthInfo(collection_id="pbc_3142635823", collection_name="_superusers", record={"id": "fuzzsuperuser01"})
    return RequestInfo(auth=su, method=base.method, context=base.context)


def main() -> None:
    folder = tempfile.mkdtemp(prefix="kb-fuzz-")
    app, guest = build_app(folder)
    posts = app.collections.get("posts")
    superuser = root_info(guest)

    def one_input(data: bytes) -> None:
        # the input is "<filter>\x01<sort>" (no \x01: the whole input is the filter)
        flt, _, sort = data.decode("utf-8", "replace").partition("\x01")
        for info in (guest, superuser):
            try:
                app.records.list_records(posts, ListParams(filter=flt, sort=sort[:200], per_page=5), info)
            except ApiError as exc:
                # PocketBase's one other answer: guests may not filter/sort by @request.* / @collection.*
                refused = exc.status == 403 and exc.message.startswith("Only superusers can filter by")
                if exc.status != 400 and not (refused and info is guest):
                    raise AssertionError(f"{exc.status} {exc.message} for filter={flt!r} sort={sort!r}") from exc

    corpus = Path(folder) / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        one_input(seed)  # every seed must pass before fuzzing starts
        (corpus / f"seed{i}").write_bytes(seed)
    dictionary = Path(folder) / "tokens.dict"
    dictionary.write_text("".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for t in TOKENS))
    args = [*sys.argv, f"-dict={dictionary}"]
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(str(corpus))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
