"""`GET /v1/messages/batches` with `after_id` and `before_id` together, through the real SDK.

The API docs don't forbid the pair (shared/reference/anthropic-api.md §5), and the SDK's own generated
test `test_method_list_with_all_params` sends both; the emulator answers the batches strictly between
the two ids, newest first, `limit` at a time. With `before_id` set the SDK pages toward newer batches
(next page: `before_id=first_id`, `after_id` kept), so a page is the `limit` batches nearest before
`before_id` and `has_more` says whether more of the window lies beyond it. Single-cursor paging is
covered in test_batches.py::test_list_pagination.
"""

from __future__ import annotations

import anthropic
import pytest

# One small request: only the batch ids matter here (params problems would be per-request results anyway).
REQUESTS = [
    {
        "custom_id": "r0",
        "params": {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]},
    }
]


@pytest.fixture
def client(emulator):
    with emulator.client(max_retries=0) as sdk:
        yield sdk


def _make_batches(client, n: int) -> list[str]:
    """Create n batches; their ids newest first (the list order)."""
    ids = [client.messages.batches.create(requests=REQUESTS).id for _ in range(n)]
    return list(reversed(ids))


def test_both_ids_give_the_batches_strictly_between(client):
    nf = _make_batches(client, 6)

    page = client.messages.batches.list(after_id=nf[0], before_id=nf[5])
    assert [b.id for b in page.data] == nf[1:5]
    assert page.has_more is False and page.first_id == nf[1] and page.last_id == nf[4]

    # limit: the page nearest before_id; the SDK then pages on with before_id=first_id, after_id kept.
    page = client.messages.batches.list(after_id=nf[0], before_id=nf[5], limit=3)
    assert [b.id for b in page.data] == nf[2:5] and page.has_more is True
    following = page.get_next_page()
    assert [b.id for b in following.data] == nf[1:2] and following.has_more is False
    assert not following.has_next_page()

    # Auto-pagination visits every batch of the window once, and nothing outside it.
    walked = [b.id for b in client.messages.batches.list(after_id=nf[0], before_id=nf[5], limit=2)]
    assert walked == nf[3:5] + nf[1:3]

    # A window exactly one page wide: no more.
    page = client.messages.batches.list(after_id=nf[1], before_id=nf[4], limit=2)
    assert [b.id for b in page.data] == nf[2:4] and page.has_more is False


@pytest.mark.parametrize(
    "after, before",
    [(1, 2), (3, 3), (4, 1)],  # adjacent; the same batch; after_id older than before_id
    ids=["adjacent", "same", "reversed"],
)
def test_empty_window(client, after, before):
    nf = _make_batches(client, 5)
    page = client.messages.batches.list(after_id=nf[after], before_id=nf[before])
    assert page.data == [] and page.has_more is False
    assert page.first_id is None and page.last_id is None
    assert list(client.messages.batches.list(after_id=nf[after], before_id=nf[before])) == []


def test_an_unknown_id_gives_an_empty_last_page(client):
    nf = _make_batches(client, 2)
    for kwargs in ({"after_id": "msgbatch_unknown", "before_id": nf[0]},
                   {"after_id": nf[1], "before_id": "msgbatch_unknown"}, {"before_id": "msgbatch_unknown"}):
        page = client.messages.batches.list(**kwargs)
        assert page.data == [] and page.has_more is False, kwargs


async def test_both_ids_async(emulator):
    async with emulator.async_client(max_retries=0) as client:
        ids = [(await client.messages.batches.create(requests=REQUESTS)).id for _ in range(4)]
        nf = list(reversed(ids))
        walked = [b.id async for b in client.messages.batches.list(after_id=nf[0], before_id=nf[3], limit=1)]
    assert walked == [nf[2], nf[1]]
