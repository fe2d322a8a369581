"""Multipart uploads through the records API: stored names, modifiers, keep semantics,
validation codes, and storage kept in step with the records (both engines)."""

from __future__ import annotations

import re

import httpx

from keepbase.app import App
from tests.conftest import make_collection

from .conftest import png, stored_files
from .helpers import NAME_RE, create, posts, update


async def test_create_stores_files_under_collection_and_record(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                                app: App) -> None:
    c = await posts(client, su_headers)
    r = await create(client, [("images", ("My Photo (1).png", png(), "image/png")),
                              ("images", ("small.png", png(), "image/png")),
                              ("doc", ("doc.txt", b"hello", "text/plain"))])
    assert r.status_code == 200, r.text
    rec = r.json()
    assert re.fullmatch(r"my_photo_1_[a-z0-9]{10}\.png", rec["images"][0])
    assert re.fullmatch(r"small_[a-z0-9]{10}\.png", rec["images"][1])
    assert re.fullmatch(r"doc_[a-z0-9]{10}\.txt", rec["doc"])
    assert stored_files(app) == sorted(f"{c['id']}/{rec['id']}/{n}" for n in [*rec["images"], rec["doc"]])


async def test_single_field_keeps_last_part(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers)
    r = await create(client, [("doc", ("aaa.txt", b"a", "text/plain")), ("doc", ("bbb.txt", b"b", "text/plain"))])
    assert r.status_code == 200, r.text
    assert r.json()["doc"].startswith("bbb_")
    assert len(stored_files(app)) == 1  # the dropped part was never stored


async def test_modifiers(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers, maxSelect=5)
    rec = (await create(client, [("images", ("aaa.png", png(), "image/png"))])).json()
    a = rec["images"][0]
    r = await update(client, rec["id"], [("images+", ("bbb.png", png(), "image/png"))])
    assert r.status_code == 200, r.text
    a_, b = r.json()["images"]
    assert a_ == a and b.startswith("bbb_")
    r = await update(client, rec["id"], [("+images", ("ccc.png", png(), "image/png"))])
    c_, a_, b_ = r.json()["images"]
    assert c_.startswith("ccc_") and (a_, b_) == (a, b)
    r = await update(client, rec["id"], data={"images-": [a, c_]})
    assert r.json()["images"] == [b]
    assert sorted(n.rsplit("/", 1)[1] for n in stored_files(app)) == [b]
    # field=<existing name> + a new part: keeps the named file, adds the new one, drops the rest
    rec2 = (await update(client, rec["id"], [("images+", ("ddd.png", png(), "image/png"))])).json()
    d = rec2["images"][1]
    r = await update(client, rec["id"], [("images", ("eee.png", png(), "image/png"))], data={"images": d})
    assert r.status_code == 200, r.text
    assert r.json()["images"][0] == d and r.json()["images"][1].startswith("eee_")
    assert sorted(n.rsplit("/", 1)[1] for n in stored_files(app)) == sorted(r.json()["images"])


async def test_plain_replace_and_clear(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers)
    rec = (await create(client, [("doc", ("one.txt", b"1", "text/plain"))])).json()
    r = await update(client, rec["id"], [("doc", ("two.txt", b"2", "text/plain"))])
    assert r.json()["doc"].startswith("two_")
    assert [p.rsplit("/", 1)[1] for p in stored_files(app)] == [r.json()["doc"]]
    r = await update(client, rec["id"], data={"doc": None})
    assert r.status_code == 200 and r.json()["doc"] == ""
    assert stored_files(app) == []


async def test_json_payload_with_files(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)
    r = await client.post("/api/collections/posts/records", data={"@jsonPayload": '{"title":"From payload"}'},
                          files=[("images", ("small.png", png(), "image/png"))])
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "From payload" and len(r.json()["images"]) == 1


async def test_validation_codes(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    from tests.conftest import make_collection

    await make_collection(client, su_headers, name="strict", type="base", listRule="", viewRule="", createRule="",
                          updateRule="", fields=[
                              {"name": "f1", "type": "file", "maxSize": 100, "mimeTypes": ["image/png"]},
                              {"name": "fm", "type": "file", "maxSelect": 2}])
    small = png(2, 2)
    assert len(small) < 100
    r = await create(client, [("f1", ("big.png", png(), "image/png"))], coll="strict")
    assert r.status_code == 400
    assert r.json()["data"] == {"f1": {
        "code": "validation_file_size_limit",
        "message": "Failed to upload big.png - the maximum allowed file size is 100 bytes.",
        "params": {"file": "big.png", "maxSize": 100}}}
    # the mime type is sniffed from the bytes: a text file called .png is refused, a PNG called .txt is not
    r = await create(client, [("f1", ("fake.png", b"not a png", "image/png"))], coll="strict")
    err = r.json()["data"]["f1"]
    assert err["code"] == "validation_invalid_mime_type"
    assert re.fullmatch(r'"fake_[a-z0-9]{10}\.png" mime type must be one of: image/png\.', err["message"])
    assert "params" not in err
    r = await create(client, [("f1", ("real.txt", small, "text/plain"))], coll="strict")
    assert r.status_code == 200, r.text
    r = await create(client, [("fm", (f"{i}.txt", b"x", "text/plain")) for i in range(3)], coll="strict")
    assert r.json()["data"]["fm"] == {"code": "validation_too_many_files",
                                      "message": "The maximum allowed files is 2.", "params": {"maxSelect": 2}}
    r = await client.post("/api/collections/strict/records", json={"f1": "not-an-existing-file.txt"})
    assert r.json()["data"]["f1"] == {"code": "validation_invalid_file",
                                      "message": "Invalid new files: [not-an-existing-file.txt].",
                                      "params": {"invalidFiles": ["not-an-existing-file.txt"]}}
    assert len(stored_files(app)) == 1  # only the one accepted upload


async def test_default_max_size_is_5mib(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers)
    r = await create(client, [("doc", ("big.bin", b"\x00" * (5 * 1024 * 1024 + 1), "application/octet-stream"))])
    assert r.json()["data"]["doc"]["params"] == {"file": "big.bin", "maxSize": 5242880}
    assert stored_files(app) == []


async def test_failed_db_write_removes_stored_files(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                    app: App) -> None:
    from tests.conftest import make_collection

    await make_collection(client, su_headers, name="uniq", type="base", listRule="", viewRule="", createRule="",
                          fields=[{"name": "title", "type": "text"}, {"name": "doc", "type": "file"}],
                          indexes=["CREATE UNIQUE INDEX idx_uniq_title ON uniq (title)"])
    r = await create(client, [("doc", ("aaa.txt", b"a", "text/plain"))], data={"title": "same"}, coll="uniq")
    assert r.status_code == 200, r.text
    before = stored_files(app)
    r = await create(client, [("doc", ("bbb.txt", b"b", "text/plain"))], data={"title": "same"}, coll="uniq")
    assert r.status_code == 400 and r.json()["data"]["title"]["code"] == "validation_not_unique"
    assert stored_files(app) == before


async def test_hook_failure_after_store_removes_files(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                      app: App) -> None:
    from keepbase.core.errors import BadRequestError
    from keepbase.core.events import RecordEvent

    await posts(client, su_headers)

    def boom(e: RecordEvent) -> None:
        e.next()  # the default action stores the files and inserts the row...
        raise BadRequestError("Then something fails before the commit.")

    app.hooks.record_create.bind(boom, id="boom")
    r = await create(client, [("doc", ("aaa.txt", b"a", "text/plain"))])
    assert r.status_code == 400
    assert stored_files(app) == []


async def test_delete_record_removes_its_files(client: httpx.AsyncClient, su_headers: dict[str, str],
                                               app: App) -> None:
    await posts(client, su_headers)
    keep = (await create(client, [("doc", ("keep.txt", b"k", "text/plain"))])).json()
    rec = (await create(client, [("images", ("aaa.png", png(), "image/png"))])).json()
    await client.get(f"/api/files/posts/{rec['id']}/{rec['images'][0]}?thumb=100x100")
    assert any("thumbs_" in p for p in stored_files(app))
    r = await client.delete(f"/api/collections/posts/records/{rec['id']}")
    assert r.status_code == 204
    assert [p.rsplit("/", 1)[1] for p in stored_files(app)] == [keep["doc"]]


async def test_delete_collection_removes_its_files(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                   app: App) -> None:
    other = await posts(client, su_headers, name="other")
    kept = (await create(client, [("doc", ("keep.txt", b"k", "text/plain"))], coll="other")).json()
    gone = await posts(client, su_headers)
    await create(client, [("doc", ("a.txt", b"a", "text/plain"))])
    rec = (await create(client, [("images", ("aaa.png", png(), "image/png"))])).json()
    await client.get(f"/api/files/posts/{rec['id']}/{rec['images'][0]}?thumb=100x100")
    assert sum(p.startswith(gone["id"] + "/") for p in stored_files(app)) >= 3
    r = await client.delete(f"/api/collections/{gone['id']}", headers=su_headers)
    assert r.status_code == 204
    assert stored_files(app) == [f"{other['id']}/{kept['id']}/{kept['doc']}"]


async def test_failed_collection_delete_keeps_its_files(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                        app: App) -> None:
    target = await posts(client, su_headers)
    await make_collection(client, su_headers, name="refs", type="base", fields=[
        {"name": "post", "type": "relation", "collectionId": target["id"], "maxSelect": 1}])
    await create(client, [("doc", ("a.txt", b"a", "text/plain"))])
    before = stored_files(app)
    r = await client.delete(f"/api/collections/{target['id']}", headers=su_headers)
    assert r.status_code == 400
    assert stored_files(app) == before and before


async def test_rejected_update_keeps_old_files(client: httpx.AsyncClient, su_headers: dict[str, str],
                                               app: App) -> None:
    await posts(client, su_headers)
    rec = (await create(client, [("images", ("aaa.png", png(), "image/png"))])).json()
    before = stored_files(app)
    r = await update(client, rec["id"], [("images", (f"{i}.png", png(), "image/png")) for i in range(4)])
    assert r.json()["data"]["images"]["code"] == "validation_too_many_files"
    assert stored_files(app) == before


async def test_hidden_field_uploads_are_ignored_for_guests(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                           app: App) -> None:
    from tests.conftest import make_collection

    await make_collection(client, su_headers, name="hid", type="base", listRule="", viewRule="", createRule="",
                          fields=[{"name": "title", "type": "text"}, {"name": "secret", "type": "file", "hidden": True}])
    r = await create(client, [("secret", ("aaa.txt", b"a", "text/plain"))], coll="hid")
    assert r.status_code == 200, r.text
    assert stored_files(app) == []


async def test_names_are_unique_per_upload(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)
    r = await create(client, [("images", ("same.png", png(), "image/png"))] * 3)
    names = r.json()["images"]
    assert len(set(names)) == 3 and all(re.fullmatch(NAME_RE + r"\.png", n) for n in names)


async def test_truncate_removes_files(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers)
    for _ in range(2):
        await create(client, [("doc", ("aaa.txt", b"a", "text/plain"))])
    assert len(stored_files(app)) == 2
    r = await client.delete("/api/collections/posts/truncate", headers=su_headers)
    assert r.status_code == 204
    assert stored_files(app) == []
