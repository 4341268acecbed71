"""``GET /channels/{id}/posts`` and ``GET /posts/{id}/thread`` as PostLists (§4.3).

Modes in priority order: ``since`` (> 0), ``after``, ``before``, plain paging. The cursor
rules are those of the server's ``AddCursorIdsForPostList``:

* ``since``: ``next_post_id`` and ``prev_post_id`` are ``""``.
* ``after``: page 0 sets ``prev_post_id = after``; fewer than ``per_page`` posts force
  ``next_post_id = ""``.
* ``before``: page 0 sets ``next_post_id = before``; fewer than ``per_page`` posts force
  ``prev_post_id = ""``.
* otherwise ``next_post_id`` is the oldest live post newer than ``order[0]`` and
  ``prev_post_id`` the newest live post older than ``order[-1]`` (``""`` when none).

``posts`` also holds, outside ``order``, the live posts of the threads the page touches
(unless ``skipFetchThreads=true``). ``has_next`` is a ``*bool`` with ``omitempty`` on the
real server, set only by thread paging and search, so it is absent here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state import millis

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .state import FakeState

SINCE_CAP = 1000
Post = dict[str, object]


def _created(post: Post) -> int:
    return millis(post, "create_at")


def channel_posts(
    state: FakeState,
    channel_id: str,
    *,
    since: int = 0,
    after: str = "",
    before: str = "",
    page: int = 0,
    per_page: int = 60,
    skip_threads: bool = False,
) -> dict[str, object]:
    all_posts = list(state.iter_channel_posts(channel_id))
    live = [p for p in all_posts if not p["delete_at"]]
    if since > 0:
        return _since(state, all_posts, since)
    if after or before:
        ref = state.posts.get(after or before)
        if ref is None:
            page_posts: list[Post] = []
        elif after:
            newer = [p for p in live if _created(p) > _created(ref)]  # ascending
            page_posts = list(reversed(newer[page * per_page:page * per_page + per_page]))
        else:
            older = [p for p in reversed(live) if _created(p) < _created(ref)]  # descending
            page_posts = older[page * per_page:page * per_page + per_page]
    else:
        newest_first = list(reversed(live))
        page_posts = newest_first[page * per_page:page * per_page + per_page]

    result = _post_list(state, page_posts, [] if skip_threads else _threads_of(state, page_posts))
    next_id: str | None = None
    prev_id: str | None = None
    if after:
        if page == 0:
            prev_id = after
        if len(page_posts) < per_page:
            next_id = ""
    elif before:
        if page == 0:
            next_id = before
        if len(page_posts) < per_page:
            prev_id = ""
    if next_id is None:
        next_id = _neighbour(live, page_posts[0], newer=True) if page_posts else ""
    if prev_id is None:
        prev_id = _neighbour(live, page_posts[-1], newer=False) if page_posts else ""
    result["next_post_id"] = next_id
    result["prev_post_id"] = prev_id
    return result


def thread(state: FakeState, post_id: str) -> dict[str, object]:
    """The requested post first, then the rest of its thread in create order."""
    post = state.posts[post_id]
    root_id = str(post["root_id"] or post_id)
    members = [state.posts[i] for i in state.thread_ids(root_id)]
    live = [p for p in members if not p["delete_at"]]
    ordered = [post] + [p for p in sorted(live, key=_created) if p["id"] != post_id]
    return _post_list(state, ordered, [])


def _since(state: FakeState, all_posts: list[Post], since: int) -> dict[str, object]:
    changed = sorted((p for p in all_posts if millis(p, "update_at") > since),
                     key=lambda p: millis(p, "update_at"))[:SINCE_CAP]
    by_id = {str(p["id"]): p for p in changed}
    for post in changed:
        root_id = str(post["root_id"])
        if root_id and root_id in state.posts:
            by_id.setdefault(root_id, state.posts[root_id])
    ordered = sorted(by_id.values(), key=_created, reverse=True)
    result = _post_list(state, ordered, [])
    result["next_post_id"] = ""
    result["prev_post_id"] = ""
    return result


def _threads_of(state: FakeState, page_posts: Iterable[Post]) -> list[Post]:
    extra: list[Post] = []
    seen: set[str] = set()
    for post in page_posts:
        root_id = str(post["root_id"] or post["id"])
        if root_id in seen:
            continue
        seen.add(root_id)
        extra.extend(state.posts[i] for i in state.thread_ids(root_id)
                     if not state.posts[i]["delete_at"])
    return extra


def _post_list(state: FakeState, ordered: list[Post], extra: list[Post]) -> dict[str, object]:
    render: Callable[[Post], Post] = state.render_post
    posts = {str(p["id"]): render(p) for p in extra}
    posts.update({str(p["id"]): render(p) for p in ordered})
    return {
        "order": [str(p["id"]) for p in ordered],
        "posts": posts,
        "next_post_id": "",
        "prev_post_id": "",
        "first_inaccessible_post_time": 0,
    }


def _neighbour(live: list[Post], anchor: Post, *, newer: bool) -> str:
    """``GetPostIdAfterTime`` / ``GetPostIdBeforeTime`` over the channel's live posts."""
    at = _created(anchor)
    if newer:
        return next((str(p["id"]) for p in live if _created(p) > at), "")
    return next((str(p["id"]) for p in reversed(live) if _created(p) < at), "")
