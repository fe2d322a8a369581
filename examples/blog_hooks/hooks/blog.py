"""Blog hooks: mail the author about new comments, keep ``posts.comment_count`` exact.

Load with ``keepbase serve --hooks examples/blog_hooks/hooks`` (see ../README.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import func, select, update

from keepbase import App, RecordEvent
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.mail import MailError, Message

log = logging.getLogger("blog_hooks")

# Internal reads done by the hooks themselves see everything, like a superuser would.
SYSTEM = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}))


def ensure_schema(app: App) -> None:
    """The blog template's collections, plus a ``comment_count`` number field on posts."""
    if app.collections.find("posts") is None or app.collections.find("comments") is None:
        from keepbase.cli.templates import load_template

        app.collections.import_collections(load_template("blog"), False)
    posts = app.collections.get("posts")
    if posts.get_field("comment_count") is None:
        fields = posts.to_dict()["fields"]
        fields.append({"name": "comment_count", "type": "number", "onlyInt": True, "min": 0})
        app.collections.update("posts", {"fields": fields})


def setup(app: App) -> None:
    ensure_schema(app)

    def recount(e: RecordEvent, *post_ids: Any) -> None:
        """Recount inside the comment's own transaction: the count commits (or rolls back) with it."""
        posts = app.collections.records_table(app.collections.get("posts"))
        comments = app.collections.records_table(app.collections.get("comments"))
        for post_id in {p for p in post_ids if p}:
            total = select(func.count()).select_from(comments).where(comments.c.post == post_id).scalar_subquery()
            e.connection.execute(update(posts).where(posts.c.id == post_id).values(comment_count=total))

    @app.on_record_create("comments")
    def count_new_comment(e: RecordEvent) -> None:
        e.next()  # insert the comment first ...
        recount(e, e.record.get("post"))  # ... then count it

    @app.on_record_update("comments")
    def count_moved_comment(e: RecordEvent) -> None:
        e.next()
        recount(e, e.record.get("post"), (e.old or {}).get("post"))

    @app.on_record_delete("comments")
    def count_deleted_comment(e: RecordEvent) -> None:
        e.next()
        recount(e, e.record.get("post"))

    @app.on_record_create("posts")
    def new_posts_have_no_comments(e: RecordEvent) -> None:
        e.record["comment_count"] = 0
        e.next()

    @app.on_record_update("posts")
    def comment_count_is_read_only(e: RecordEvent) -> None:
        e.record["comment_count"] = (e.old or {}).get("comment_count", 0)
        e.next()

    @app.on_record_after_create("comments")
    def mail_the_author(e: RecordEvent) -> None:
        """Runs only after the comment committed. SMTP is slow, so it is sent from its own thread
        (after-hooks run on the writer's thread on SQLite)."""
        post = app.records.find_record_by_id(app.collections.get("posts"), e.record["post"], SYSTEM)
        author = app.records.find_record_by_id(app.collections.get("authors"), post["author"], SYSTEM)
        if author.get("id") == e.record.get("author") or not author.get("email"):
            return  # no mail for commenting on your own post
        message = Message(
            to=[author["email"]],
            subject=f"New comment on “{post['title']}”",
            html=f"<p>Someone commented on <b>{post['title']}</b>:</p><blockquote>{_escape(e.record['content'])}"
                 "</blockquote>",
            text=f"New comment on {post['title']}:\n\n{e.record['content']}",
        )
        threading.Thread(target=_send, args=(app, message), name="blog-mail", daemon=True).start()


def _send(app: App, message: Message) -> None:
    try:
        app.mailer.send(message)
    except MailError as exc:
        log.warning("comment notification not sent: %s", exc)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
