"""Every documented validation error, with the API's error shape."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from conftest import SPEC, params_for, requests_for, results_by_id, wait_ended


def assert_error_shape(exc: anthropic.APIStatusError, status: int, error_type: str) -> None:
    assert exc.status_code == status
    body = exc.body
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type and body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert exc.request_id == body["request_id"]  # also sent as the request-id header


@pytest.mark.parametrize(
    "custom_id",
    ["has space", "dot.ted", "", "x" * 65, "émoji", "trailing-newline\n"],
    ids=["space", "dot", "empty", "too-long", "non-ascii", "trailing-newline"],
)
def test_bad_custom_id_fails_the_create(client, custom_id):
    requests = requests_for(["a"]) + [{"custom_id": custom_id, "params": params_for(["b"])}]
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.batches.create(requests=requests)
    assert_error_shape(raised.value, 400, "invalid_request_error")
    assert "custom_id" in raised.value.body["error"]["message"]
    assert list(client.messages.batches.list()) == []  # nothing was created


def test_longest_allowed_custom_id_is_fine(client):
    batch = client.messages.batches.create(requests=[{"custom_id": "A-z_9" * 12 + "abcd", "params": params_for(["a"])}])
    assert batch.request_counts.processing == 1


def test_duplicate_custom_id(client):
    requests = requests_for(["a", "b"])
    requests[1]["custom_id"] = requests[0]["custom_id"]
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.batches.create(requests=requests)
    assert_error_shape(raised.value, 400, "invalid_request_error")
    assert "Duplicate" in raised.value.body["error"]["message"]


def test_empty_and_malformed_envelopes(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "a"}])  # no params
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": {}, "extra": 1}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=requests_for(["a"]), extra_body={"unknown": 1})


def test_too_many_requests_is_413(emulator_factory):
    emu = emulator_factory(max_batch_requests=3)
    with emu.client(max_retries=0) as client:
        client.messages.batches.create(requests=requests_for(["a", "b", "c"]))
        with pytest.raises(anthropic.ContentTooLargeError) as raised:
            client.messages.batches.create(requests=requests_for(["a", "b", "c", "d"]))
    assert_error_shape(raised.value, 413, "request_too_large")


def test_oversized_batch_body_is_413(emulator_factory):
    emu = emulator_factory(max_batch_bytes=50_000)
    with emu.client(max_retries=0) as client:
        with pytest.raises(anthropic.ContentTooLargeError) as raised:
            client.messages.batches.create(requests=requests_for(["x" * 1000] * 60))
        assert_error_shape(raised.value, 413, "request_too_large")
        # The connection survives for the next call.
        client.messages.batches.create(requests=requests_for(["small"]))


def test_oversized_messages_body_is_413(emulator_factory):
    emu = emulator_factory(max_request_bytes=10_000)
    with emu.client(max_retries=0) as client:
        with pytest.raises(anthropic.ContentTooLargeError) as raised:
            client.messages.create(**params_for(["y" * 20_000]))
    assert_error_shape(raised.value, 413, "request_too_large")


def test_missing_api_key_is_401(client):
    with pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.batches.list(extra_headers={"Authorization": anthropic.Omit()})
    assert_error_shape(raised.value, 401, "authentication_error")


def test_wrong_api_key_is_401_when_keys_are_configured(emulator_factory):
    emu = emulator_factory(api_keys=["sk-good"])
    with anthropic.Anthropic(base_url=emu.base_url, api_key="sk-bad", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as raised:
            bad.messages.create(**params_for(["x"]))
        assert_error_shape(raised.value, 401, "authentication_error")
    with anthropic.Anthropic(base_url=emu.base_url, api_key="sk-good", max_retries=0) as good:
        good.messages.create(**params_for(["x"]))
    # The x-api-key header works as well as the SDK's Authorization: Bearer.
    ok = httpx2.post(
        f"{emu.base_url}/v1/messages/count_tokens",
        json={"model": SPEC.model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": "sk-good", "anthropic-version": "2026-10-21"},
    )
    assert ok.status_code == 200


def test_unknown_batch_id_is_404_everywhere(client):
    for call in (
        client.messages.batches.retrieve,
        client.messages.batches.cancel,
        client.messages.batches.delete,
    ):
        with pytest.raises(anthropic.NotFoundError) as raised:
            call("msgbatch_doesnotexist")
        assert_error_shape(raised.value, 404, "not_found_error")
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/messages/batches/msgbatch_nope/results", cast_to=object)


def test_delete_before_the_end_is_400(emulator, client):
    emulator.pause_worker()
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.batches.delete(batch.id)
    assert_error_shape(raised.value, 400, "invalid_request_error")
    emulator.resume_worker()


def test_results_before_the_end_is_400(emulator, client):
    emulator.pause_worker()
    batch = client.messages.batches.create(requests=requests_for(["a"]))
    with pytest.raises(anthropic.BadRequestError):
        client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)  # the SDK itself refuses: results_url is null
    emulator.resume_worker()


def test_problems_inside_params_become_errored_lines(client):
    good = params_for(["I love it"])
    requests = [
        {"custom_id": "ok", "params": good},
        {"custom_id": "unknown-model", "params": {**good, "model": "claude-nonexistent-9"}},
        {"custom_id": "zero-max-tokens", "params": {**good, "max_tokens": 0}},
        {"custom_id": "stream", "params": {**good, "stream": True}},
        {"custom_id": "betas", "params": {**good, "betas": ["prompt-caching-2024-07-31"]}},
        {"custom_id": "no-messages", "params": {k: v for k, v in good.items() if k != "messages"}},
        {
            "custom_id": "five-breakpoints",
            "params": {
                **good,
                "system": [
                    {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
                    for i in range(5)
                ],
            },
        },
        # API version 2026-10-21 (what SDK 2.x sends) refuses temperature even at a default value [MIG].
        {"custom_id": "with-temperature", "params": {**good, "temperature": 0.0}},
    ]
    batch = client.messages.batches.create(requests=requests)  # the create itself succeeds
    ended = wait_ended(client, batch.id)
    assert ended.request_counts.succeeded == 1 and ended.request_counts.errored == 7
    results = results_by_id(client, batch.id)
    assert results["ok"].type == "succeeded"
    for custom_id in (
        "unknown-model", "zero-max-tokens", "stream", "betas", "no-messages", "five-breakpoints", "with-temperature"
    ):
        result = results[custom_id]
        assert result.type == "errored", custom_id
        assert result.error.type == "error"
        assert result.error.error.type == "invalid_request_error", custom_id
        assert result.error.request_id.startswith("req_")
    assert "claude-nonexistent-9" in results["unknown-model"].error.error.message
    assert "4" in results["five-breakpoints"].error.error.message
    assert results["with-temperature"].error.error.message == "temperature: Extra inputs are not permitted"


def test_messages_params_errors(client):
    good = params_for(["x"])
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(**{**good, "model": "claude-nonexistent-9"})
    assert_error_shape(raised.value, 404, "not_found_error")
    assert raised.value.body["error"]["message"] == "model: claude-nonexistent-9"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**good, "max_tokens": -1})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**good, "max_tokens": 70_000}, timeout=30)  # above the 64k maximum
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**good, extra_body={"betas": ["x"]})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**good, "messages": []})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**good, "tool_choice": {"type": "tool", "name": "missing"}})
    # claude-sonnet-4-0 (no structured outputs) is retired now: a 404 like any retired model.
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(
            model="claude-sonnet-4-0", max_tokens=10, messages=[{"role": "user", "content": "x"}],
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        )
    assert raised.value.body["error"]["message"] == "model: claude-sonnet-4-0"


def _raw(emulator, method: str, path: str, **kwargs) -> httpx2.Response:
    # The API requires anthropic-version on every call (the SDK sends 2026-10-21).
    headers = {"x-api-key": emulator.api_key, "anthropic-version": "2026-10-21", **kwargs.pop("headers", {})}
    return httpx2.request(method, f"{emulator.base_url}{path}", headers=headers, **kwargs)


def _assert_error_json(response: httpx2.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/batches", "/v1/messages/count_tokens"])
def test_malformed_bodies_get_error_json(emulator, path):
    json_type = {"content-type": "application/json"}
    _assert_error_json(_raw(emulator, "POST", path, content=b"{not json", headers=json_type), 400, "invalid_request_error")
    _assert_error_json(_raw(emulator, "POST", path, content=b"[1, 2]", headers=json_type), 400, "invalid_request_error")
    _assert_error_json(_raw(emulator, "POST", path, content=b"\xff\xfe", headers=json_type), 400, "invalid_request_error")
    _assert_error_json(
        _raw(emulator, "POST", path, content=b'{"a": 1}', headers={"content-type": "text/plain"}),
        400, "invalid_request_error",
    )
    _assert_error_json(_raw(emulator, "POST", path), 400, "invalid_request_error")


def test_unknown_paths_and_methods(emulator):
    _assert_error_json(_raw(emulator, "GET", "/v1/nothing"), 404, "not_found_error")
    _assert_error_json(_raw(emulator, "GET", "/v1/messages/batches/x/y/z"), 404, "not_found_error")
    response = _raw(emulator, "PUT", "/v1/messages/batches")
    assert response.status_code == 405 and response.json()["type"] == "error"


def test_list_limit_bounds(client):
    for limit in (0, 1001):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.list(limit=limit)
    # A cursor naming no batch: an empty last page (no documented error; the SDK's own tests expect a page).
    page = client.messages.batches.list(after_id="msgbatch_unknown")
    assert page.data == [] and page.has_more is False


def test_chunked_upload_is_read(emulator):
    def body():
        yield b'{"model": "' + SPEC.model.encode() + b'", '
        yield b'"messages": [{"role": "user", "content": "hi"}]}'

    response = _raw(
        emulator, "POST", "/v1/messages/count_tokens", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["input_tokens"] > 0


def test_protocol_errors_are_error_json_too(emulator):
    response = httpx2.request("OPTIONS", f"{emulator.base_url}/v1/messages")
    assert response.status_code == 501
    assert response.json()["type"] == "error"
    import socket

    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
        raw.sendall(b"NOT-HTTP\r\n\r\n")
        answer = raw.recv(65536).decode()
    # Not even a request line: the stdlib answers as HTTP/0.9 (body only), still the error JSON.
    assert '"type":"error"' in answer.replace(" ", "") and "<html" not in answer.lower()


# ---------------------------------------------------------------------------- streamed body parser


def _reader(data: bytes, step: int):
    position = 0

    def read(n: int) -> bytes:
        nonlocal position
        chunk = data[position : position + min(n, step)]
        position += len(chunk)
        return chunk

    return read


@pytest.mark.parametrize("step", [1, 3, 7, 4096])
def test_streamed_parser_handles_any_chunking(step):
    import json as _json

    from claude_batch.emulator.validation import iter_batch_requests

    items = [{"custom_id": f"id{i}", "params": {"n": 12345678 + i, "text": "héllo wörld ✓ \u2028", "f": 1.5e3}} for i in range(5)]
    body = _json.dumps({"requests": items}, indent=2, ensure_ascii=False).encode()
    parsed = list(iter_batch_requests(_reader(body, step)))
    assert [value for _, value in parsed] == items
    assert [_json.loads(raw) for raw, _ in parsed] == items


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"requests": [{"custom_id": "a"} {"x": 1}]}', "expecting"),
        (b'{"requests": [{"custom_id": "a"}]} trailing', "extra data"),
        (b'{"requests": {"custom_id": "a"}}', "valid list"),
        (b'{"other": 1, "requests": []}', "Extra inputs"),
        (b'{"requests": [{"custom_id": "a"', "invalid JSON"),
        (b'{}', "Field required"),
        (b'{"requests": ["\xff"]}', "UTF-8"),
    ],
)
def test_streamed_parser_rejects_bad_bodies(body, message):
    from claude_batch.emulator.validation import BodyError, iter_batch_requests

    with pytest.raises(BodyError, match=message):
        list(iter_batch_requests(_reader(body, 5)))


def _tricky_requests() -> list[dict]:
    """Requests that trip a guess of where one request ends (validation._StreamedBody.element)."""
    return [
        {"custom_id": "a", "params": {"text": 'a row with },{"custom_id":"b" in it'}},
        {"custom_id": "b", "params": {"x": [{"a": 1}, {"custom_id": "nested, not a request"}]}},
        {"params": {"n": 1}, "custom_id": "c"},
        {"custom_id": "d", "params": {"text": "long " * 40_000}},  # bigger than the read-ahead
        {"custom_id": "e", "params": {"text": "héllo ✓ 😀 \u2028", "big": 10**30, "f": -1.5e300}},
        {"custom_id": "f", "params": {}},
    ]


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["compact", "spaced"])
def test_streamed_parser_splits_requests_exactly(step, separators):
    import json as _json

    from claude_batch.emulator.validation import iter_batch_requests

    encoded = [_json.dumps(item, separators=separators, ensure_ascii=False).encode() for item in _tricky_requests()]
    # JSON the stdlib takes that the fast parser may not: an escaped key, a lone surrogate.
    encoded.append(b'{"custom\\u005fid":"g","params":{"t":"\\ud800"}}')
    body = b'{"requests": [' + separators[0].encode().join(encoded) + b"]}"
    parsed = list(iter_batch_requests(_reader(body, step)))
    assert [value for _, value in parsed] == _json.loads(body)["requests"]
    assert [raw for raw, _ in parsed] == encoded  # each request's bytes exactly as sent


def test_compact_bodies_take_the_fast_path(monkeypatch):
    """A request at a time in one fast parse: the stdlib parser only sees the key and the last one."""
    import json as _json

    from claude_batch.emulator import validation

    slow = []
    value = validation._StreamedBody.value
    monkeypatch.setattr(validation._StreamedBody, "value", lambda self, decoder: slow.append(1) or value(self, decoder))
    body = _json.dumps({"requests": requests_for([f"row {i}" for i in range(50)])}, separators=(",", ":")).encode()
    assert len(list(validation.iter_batch_requests(_reader(body, 4096)))) == 50
    assert len(slow) == 2


@pytest.mark.parametrize(
    "bad, message",
    [
        (b'{"custom_id":"b","params":{"x":tru}}', "invalid JSON"),
        (b'{"custom_id":"b","params":{"x":"\xff"}}', "UTF-8"),
        (b'{"custom_id":"b","params":{"x":"tab\there"}}', "invalid JSON: Invalid control character"),
        (b'{"custom_id":"b","params":{}}{"custom_id":"b2","params":{}}', "expecting ',' or ']'"),
        (b'{"custom_id":"b","params":{"x":[1,]}}', "invalid JSON"),
    ],
)
def test_streamed_parser_rejects_a_bad_request_between_good_ones(bad, message):
    from claude_batch.emulator.validation import BodyError, iter_batch_requests

    good = b'{"custom_id":"a","params":{}}'
    body = b'{"requests":[' + good + b"," + bad + b"," + good.replace(b'"a"', b'"c"') + b"]}"
    for step in (3, 1 << 20):
        with pytest.raises(BodyError, match=message):
            list(iter_batch_requests(_reader(body, step)))


def test_envelope_errors_name_the_request_in_a_compact_body(emulator):
    import json as _json

    requests = requests_for(["a", "b", "c", "d"])
    requests[2]["custom_id"] = "bad id"
    requests[3]["custom_id"] = requests[1]["custom_id"]
    json_type = {"content-type": "application/json"}
    body = _json.dumps({"requests": requests}, separators=(",", ":")).encode()
    response = _raw(emulator, "POST", "/v1/messages/batches", content=body, headers=json_type)
    _assert_error_json(response, 400, "invalid_request_error")
    assert response.json()["error"]["message"].startswith("requests.2.custom_id: String should match pattern")
    requests[2]["custom_id"] = "fine"
    body = _json.dumps({"requests": requests}, separators=(",", ":")).encode()
    response = _raw(emulator, "POST", "/v1/messages/batches", content=body, headers=json_type)
    _assert_error_json(response, 400, "invalid_request_error")
    assert response.json()["error"]["message"].startswith("requests.3.custom_id: Duplicate custom_id 'r1'")


def test_pretty_printed_batch_body_is_accepted(emulator, client):
    import json as _json

    body = _json.dumps({"requests": requests_for(["I love it", "awful"])}, indent=2).encode()
    response = _raw(emulator, "POST", "/v1/messages/batches", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    batch_id = response.json()["id"]
    wait_ended(client, batch_id)
    assert {r.type for r in results_by_id(client, batch_id).values()} == {"succeeded"}
