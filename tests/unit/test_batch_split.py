import pytest

from claude_batch import batches


def test_split_by_count_and_bytes():
    reqs = [{"custom_id": str(i)} for i in range(10)]
    assert batches.split_requests(reqs, [10] * 10, max_count=4, max_bytes=10_000) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    chunks = batches.split_requests(reqs, [100] * 10, max_count=100, max_bytes=350)
    assert all(len(c) * 101 + batches.ENVELOPE_BYTES <= 350 for c in chunks)
    assert sum(len(c) for c in chunks) == 10


def test_request_over_limit_is_named():
    with pytest.raises(ValueError, match="'big'"):
        batches.split_requests([{"custom_id": "big"}], [1000], max_count=10, max_bytes=500)
