from claude_batch import batches


def total(sizes):
    return batches.EncodedBody.total_size(sizes)


def test_split_by_count_and_bytes():
    numbered = [(n, 10) for n in range(1, 11)]
    ranges, over = batches.split_ranges(numbered, max_count=4, max_bytes=10_000)
    assert [(a, b) for a, b, _ in ranges] == [(1, 4), (5, 8), (9, 10)] and over == []
    assert [size for _, _, size in ranges] == [total([10] * 4), total([10] * 4), total([10] * 2)]
    ranges, _ = batches.split_ranges([(n, 100) for n in range(1, 11)], max_count=100, max_bytes=350)
    assert all(size <= 350 for _, _, size in ranges)
    assert sum(b - a + 1 for a, b, _ in ranges) == 10


def test_exact_fit_and_one_byte_over():
    limit = total([100, 100, 100])
    ranges, _ = batches.split_ranges([(1, 100), (2, 100), (3, 100)], max_count=10, max_bytes=limit)
    assert [(a, b) for a, b, _ in ranges] == [(1, 3)]
    ranges, _ = batches.split_ranges([(1, 100), (2, 100), (3, 100)], max_count=10, max_bytes=limit - 1)
    assert [(a, b) for a, b, _ in ranges] == [(1, 2), (3, 3)]


def test_request_over_limit_is_skipped_and_named():
    ranges, over = batches.split_ranges([(1, 10), (2, 1000), (3, 10)], max_count=10, max_bytes=500)
    assert [(a, b) for a, b, _ in ranges] == [(1, 1), (3, 3)]
    assert over == [(2, 1000)]


def test_gaps_in_numbering_start_a_new_batch():
    ranges, _ = batches.split_ranges([(1, 10), (2, 10), (5, 10)], max_count=10, max_bytes=10_000)
    assert [(a, b) for a, b, _ in ranges] == [(1, 2), (5, 5)]
