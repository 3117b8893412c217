"""Request checks, with the API's split between envelope and params problems.

- Batch envelope (body shape, ``custom_id`` pattern and uniqueness, request count) fails the whole
  create call: 400 ``invalid_request_error``, or 413 ``request_too_large`` above 100,000 requests.
- Problems inside ``params`` raise :class:`ParamsError`; ``/v1/messages`` answers it as an HTTP
  error, a batch turns it into an ``errored`` result line (type ``invalid_request_error``).

The batch body is parsed element by element (``iter_batch_requests``) so a 100,000-request upload
is never held as one big Python object.
"""

from __future__ import annotations

import codecs
import json
import re
from datetime import date
from typing import Any, Callable, Iterator

from .. import catalog
from ..errors import ClaudeBatchError
from . import versions
from .errors import ApiError, ParamsError

CUSTOM_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # used with fullmatch: "$" would let "id\n" through
MAX_BATCH_REQUESTS = 100_000
MAX_BREAKPOINTS = 4

# Body keys of a Messages request: the SDK's MessageCreateParams, plus the sampling parameters that
# API version 2023-06-01 still takes (the SDK 2.x types dropped them; 2026-10-21 refuses them, see
# versions.py).
MESSAGE_KEYS = frozenset(
    {
        "model", "max_tokens", "messages", "system", "tools", "tool_choice", "output_config",
        "metadata", "stop_sequences", "stream", "thinking", "cache_control", "container",
        "diagnostics", "inference_geo", "service_tier", "speed", "user_profile_id",
        "temperature", "top_p", "top_k", "context_management", "mcp_servers",
    }
)
COUNT_TOKENS_KEYS = frozenset(
    {
        "model", "messages", "system", "tools", "tool_choice", "output_config", "thinking",
        "cache_control", "speed", "user_profile_id", "context_management", "mcp_servers",
    }
)
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ROLES = ("user", "assistant")


def _bad(message: str, status: int = 400, error_type: str | None = None) -> ParamsError:
    return ParamsError(status, message, error_type=error_type)


# ---------------------------------------------------------------------------- batch envelope

try:
    # jiter (pydantic_core, installed with the anthropic SDK's pydantic 2): parses UTF-8 bytes without
    # a str copy of the body, about twice as fast as the stdlib on request-sized values.
    from pydantic_core import from_json as _jiter_loads

    _jiter_loads(b"{}", allow_inf_nan=True, cache_strings="keys")  # too old for these options: TypeError
except (ImportError, TypeError):  # pragma: no cover - pydantic 1 or an early pydantic 2
    _jiter_loads = None

_WS = b" \t\n\r"
_WS_RE = re.compile(rb"[ \t\n\r]*")
_READ_CHUNK = 1 << 20
_MIN_AHEAD = 1 << 16
_MAX_AHEAD = 4 << 20  # past this, the odd cut-off parse is cheap next to the value's own
_MAX_ELEMENT_BYTES = 40 * (1 << 20)  # one request can hold at most a 32 MB Messages body
# Where the next request most likely starts: "}" "," "{" and its first key. Only a guess, see element().
_NEXT_REQUEST_RE = re.compile(rb'\}[ \t\n\r]*,[ \t\n\r]*\{[ \t\n\r]*"(?:custom_id|params)"')
_COMPACT_NEXT = b'},{"custom_id"'  # the same in compact JSON: bytes.find is twice as fast as the regex


class BodyError(ClaudeBatchError, ValueError):
    """A batch body that is not the JSON the API accepts."""


def _fast_loads(data: bytes) -> Any:
    """A complete JSON value, or ValueError. Accepts a subset of what the stdlib accepts (jiter
    rejects lone surrogate escapes, the stdlib takes them), so a rejection here is never final."""
    if _jiter_loads is not None:
        return _jiter_loads(data, allow_inf_nan=True, cache_strings="keys")
    return json.loads(data.decode("utf-8"))


class _StreamedBody:
    """The body's bytes, read from ``read`` as parsing needs them, about one request ahead."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.buf = b""
        self.pos = 0
        self.eof = False
        self._ahead = _MIN_AHEAD  # bytes wanted in the buffer before parsing a value
        self._compact = True  # look for _COMPACT_NEXT first (until a body shows otherwise)

    def fill(self, size: int = _READ_CHUNK) -> bool:
        """Append more of the body; False at its end."""
        if self.eof:
            return False
        data = self._read(size)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def peek(self) -> bytes:
        """Next non-whitespace byte (b'' at the end), without consuming it."""
        pos = self.pos
        if pos < len(self.buf) and self.buf[pos] not in _WS:
            return self.buf[pos : pos + 1]  # compact JSON: no whitespace to skip
        while True:
            self.pos = _WS_RE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos : self.pos + 1]
            if not self.fill():
                return b""

    def closes(self, close: bytes, message: str) -> bool:
        """After a member: True (and past it) at ``close``, False (and past it) at a comma."""
        following = self.peek()
        if following != close and following != b",":
            raise self.fail(message)
        self.pos += 1
        return following == close

    def fail(self, message: str) -> BodyError:
        """The error for an unexpected byte here: invalid UTF-8 is named as such."""
        try:
            codecs.utf_8_decode(self.buf[self.pos : self.pos + 4], "strict", False)
        except UnicodeDecodeError:
            return BodyError("request body is not valid UTF-8")
        return BodyError(message)

    def expect(self, char: bytes, what: str) -> None:
        if self.peek() != char:
            raise self.fail(what)
        self.pos += 1

    def _read_ahead(self) -> None:
        # Parse once the buffer most likely holds the whole value: a value cut off at the end of
        # the buffer costs a wasted parse (and, for the stdlib, a JSONDecodeError counting lines).
        while len(self.buf) - self.pos < self._ahead and self.fill():
            pass

    def _took(self, size: int) -> None:
        self.pos += size
        self._ahead = min(max(_MIN_AHEAD, 2 * size), _MAX_AHEAD)

    def element(self, decoder: json.JSONDecoder) -> tuple[bytes, Any]:
        """(raw JSON bytes, value) of the next element of the requests array.

        Fast path: guess where the request ends (where the next one starts) and parse that slice. A
        guess is only taken when the slice parses on its own as a JSON object: objects are
        prefix-free, so the slice is then exactly the element, whatever the guess was based on.
        Anything else (the last request, a wrong guess, odd JSON) goes through ``value``.
        """
        self.peek()
        self._read_ahead()
        buf, pos = self.buf, self.pos
        if buf[pos : pos + 1] == b"{":
            limit = min(len(buf), pos + self._ahead)
            end = buf.find(_COMPACT_NEXT, pos, limit) if self._compact else -1
            if end < 0:
                match = _NEXT_REQUEST_RE.search(buf, pos, limit)
                end = -1 if match is None else match.start()
                self._compact = match is None  # a body with spaces or other key order: regex first
            if end >= 0:
                raw = buf[pos : end + 1]
                try:
                    value = _fast_loads(raw)
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    self._took(len(raw))
                    return raw, value
        return self.value(decoder)

    def value(self, decoder: json.JSONDecoder) -> tuple[bytes, Any]:
        """(raw JSON bytes, value) of the next JSON value, parsed by the stdlib (its error messages)."""
        self.peek()
        self._read_ahead()
        size = self._ahead
        while True:
            window = self.buf[self.pos : self.pos + size]
            final = self.eof and self.pos + size >= len(self.buf)
            try:
                text, _ = codecs.utf_8_decode(window, "strict", final)
            except UnicodeDecodeError:
                raise BodyError("request body is not valid UTF-8") from None
            try:
                value, end = decoder.raw_decode(text)
                # A number may go on past the window; anything else ends with its own delimiter.
                if end < len(text) or final or not isinstance(value, (int, float)):
                    raw = text[:end].encode("utf-8")
                    self._took(len(raw))
                    return raw, value
            except json.JSONDecodeError as exc:
                if final or size > _MAX_ELEMENT_BYTES:
                    raise BodyError(f"invalid JSON: {exc.msg}") from None
            size *= 2
            while self.pos + size > len(self.buf) and self.fill(max(size, _READ_CHUNK)):
                pass


def iter_batch_requests(read: Callable[[int], bytes]) -> Iterator[tuple[bytes, Any]]:
    """Yield ``(raw_json, value)`` for each element of the body's top-level ``requests`` array.

    ``read(n)`` returns up to n more bytes of the body (b"" at its end): the body is parsed a chunk
    at a time, so memory stays at one chunk plus about two requests whatever the upload. Each
    ``raw_json`` is the element's bytes as sent (valid UTF-8). Other top-level keys are rejected
    (only ``requests`` is allowed). Raises BodyError on anything that is not a JSON object with a
    ``requests`` array.
    """
    decoder = json.JSONDecoder()
    body = _StreamedBody(read)
    body.expect(b"{", "request body must be a JSON object")
    seen_requests = False
    if body.peek() == b"}":
        body.pos += 1
    else:
        while True:
            if body.peek() != b'"':
                raise body.fail("invalid JSON: expecting a property name")
            _, key = body.value(decoder)
            body.expect(b":", "invalid JSON: expecting ':'")
            if key != "requests":
                body.value(decoder)  # must be valid JSON before being rejected as unknown
                raise BodyError(f"{key}: Extra inputs are not permitted")
            if seen_requests:
                raise BodyError("requests: given twice")
            seen_requests = True
            body.expect(b"[", "requests: Input should be a valid list")
            if body.peek() == b"]":
                body.pos += 1
            else:
                while True:
                    yield body.element(decoder)
                    if body.closes(b"]", "invalid JSON: expecting ',' or ']' in requests"):
                        break
            if body.closes(b"}", "invalid JSON: expecting ',' or '}'"):
                break
    if body.peek() != b"":
        raise body.fail("invalid JSON: extra data after the body")
    if not seen_requests:
        raise BodyError("requests: Field required")


def check_envelope(index: int, item: Any, seen: set[str]) -> tuple[str, Any]:
    """(custom_id, params) of one batch request, or ApiError 400 for the whole create call."""
    if not isinstance(item, dict):
        raise ApiError(400, f"requests.{index}: Input should be a valid dictionary")
    for key in item:
        if key not in ("custom_id", "params"):
            raise ApiError(400, f"requests.{index}.{key}: Extra inputs are not permitted")
    if "custom_id" not in item:
        raise ApiError(400, f"requests.{index}.custom_id: Field required")
    if "params" not in item:
        raise ApiError(400, f"requests.{index}.params: Field required")
    custom_id = item["custom_id"]
    if not isinstance(custom_id, str):
        raise ApiError(400, f"requests.{index}.custom_id: Input should be a valid string")
    if not CUSTOM_ID_RE.fullmatch(custom_id):
        raise ApiError(
            400,
            f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'",
        )
    if custom_id in seen:
        raise ApiError(
            400,
            f"requests.{index}.custom_id: Duplicate custom_id {custom_id!r}; "
            "custom_id values must be unique within a batch",
        )
    seen.add(custom_id)
    return custom_id, item["params"]


# ---------------------------------------------------------------------------- params


def _check_cache_control(where: str, value: Any) -> str:
    field = f"{where}.cache_control" if where else "cache_control"
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise _bad(f"{field}: expected {{\"type\": \"ephemeral\"}}")
    ttl = value.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise _bad(f"{field}.ttl: Input should be '5m' or '1h'")
    return ttl


def _check_blocks(where: str, content: Any, *, allow_string: bool = True) -> None:
    if isinstance(content, str):
        if not allow_string:
            raise _bad(f"{where}: Input should be a valid list")
        return
    if not isinstance(content, list):
        raise _bad(f"{where}: Input should be a valid string or list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _bad(f"{where}.{j}: content blocks must be objects with a type")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise _bad(f"{where}.{j}.text: Field required")
        if "cache_control" in block and block["cache_control"] is not None:
            _check_cache_control(f"{where}.{j}", block["cache_control"])


def _check_schema_output(params: dict, model: str) -> None:
    output_config = params.get("output_config")
    if output_config is None:
        return
    if not isinstance(output_config, dict):
        raise _bad("output_config: Input should be a valid dictionary")
    fmt = output_config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise _bad("output_config.format.type: Input should be 'json_schema'")
    if not isinstance(fmt.get("schema"), dict):
        raise _bad("output_config.format.schema: Field required")
    if catalog.is_known(model) and not catalog.model_info(model).json_schema_output:
        raise _bad(f"output_config.format: structured outputs are not supported by model {model}")


def _check_tools(params: dict) -> None:
    tools = params.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _bad(f"tools.{i}: Input should be a valid dictionary")
            name = tool.get("name")
            if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
                raise _bad(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
                raise _bad(f"tools.{i}.input_schema: Field required")
            if name in names:
                raise _bad("tools: Tool names must be unique.")
            names.add(name)
            if tool.get("cache_control") is not None:
                _check_cache_control(f"tools.{i}", tool["cache_control"])
    choice = params.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if choice["type"] in ("any", "tool") and not names:
        raise _bad("tool_choice: tool_choice forces tool use but no tools were provided")
    if choice["type"] == "tool" and choice.get("name") not in names:
        raise _bad(f"tool_choice.name: tool {choice.get('name')!r} is not one of the provided tools")
    thinking = params.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive") and choice["type"] in (
        "any",
        "tool",
    ):
        raise _bad("Thinking may not be enabled when tool_choice forces tool use.")


def _check_model(params: dict, *, in_batch: bool, day: date) -> str:
    if "model" not in params:
        raise _bad("model: Field required")
    model = params["model"]
    if not isinstance(model, str):
        raise _bad("model: Input should be a valid string")
    if catalog.retirement(model, day) is not None:
        # [DEP] requests to a retired model fail; observed 404 not_found_error "model: <id>" (REF §2).
        # Same answer inside a batch: that request's line is errored with not_found_error.
        raise _bad(f"model: {model}", 404, "not_found_error")
    if not catalog.is_known(model):
        # The Messages API answers an unknown model with 404 not_found_error "model: <name>".
        raise _bad(f"model: {model}", 404, "not_found_error") if not in_batch else _bad(f"model: {model}")
    return model


def _check_messages(params: dict) -> None:
    messages = params.get("messages")
    if messages is None:
        raise _bad("messages: Field required")
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in _ROLES:
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _bad(f"messages.{i}.content: Field required")
        _check_blocks(f"messages.{i}.content", message["content"])


def _check_sampling(params: dict) -> None:
    for key, low, high in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)):
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise _bad(f"{key}: Input should be a number between {low:g} and {high:g}")
    top_k = params.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise _bad("top_k: Input should be a non-negative integer")
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _bad("stop_sequences: Input should be a valid list of strings")




def _effort_rank(level: str) -> int:
    return catalog.EFFORT_LEVELS.index(level)


def _check_model_rules(params: dict, info: catalog.ModelInfo) -> None:
    """Settings the model refuses (400 invalid_request_error), from its facts in models.json.

    Runs after the shape checks (messages, tools, output_config are well-formed by then).
    """
    thinking = params.get("thinking")
    kind = None
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad("thinking: Input should be a valid dictionary")
        kind = thinking.get("type")
        if kind not in catalog.THINKING_TYPES:
            raise _bad("thinking.type: Input should be " + _or_list(catalog.THINKING_TYPES))
        if not info.thinking_types.get(kind, False):
            # [O55] wording: '"thinking.type.disabled" is not supported for this model.'
            # (Opus 5.5 / Fable refuse disabled and enabled; 5.x refuse enabled+budget [H55][S5][O55];
            # Sonnet 5.5 refuses disabled, takes between_tools [S55]).
            raise _bad(f'"thinking.type.{kind}" is not supported for this model.')
        if kind == "enabled":
            # Manual extended thinking takes a token budget (4.x models: "enabled + budget_tokens",
            # REF §2 table).
            budget = thinking.get("budget_tokens")
            if budget is None:
                raise _bad("thinking.enabled.budget_tokens: Field required")
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
                raise _bad("thinking.enabled.budget_tokens: Input should be a positive integer")

    output_config = params.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if effort is not None:
        if effort not in catalog.EFFORT_LEVELS:
            # Values: SDK:types/output_config_param.py (REF §2).
            raise _bad("output_config.effort: Input should be " + _or_list(catalog.EFFORT_LEVELS))
        if not info.effort_supported:
            # Haiku 4.5: effort "not supported" (REF §2 table; models.json effort.supported).
            raise _bad(f"output_config.effort: effort is not supported for this model ({info.name}).")

    if kind in ("disabled", "between_tools") and info.off_max_effort is not None:
        # [H55P] Haiku 5.5: disabled only at effort low/medium/high, 400 at xhigh/max; [S55] Sonnet 5.5
        # between_tools low/medium/high only; [O5] Opus 5 disabled at effort <= high. An omitted
        # effort is the model's default effort.
        level = effort or info.effort_default
        if level is not None and _effort_rank(level) > _effort_rank(info.off_max_effort):
            raise _bad(
                f'"thinking.type.{kind}" is only supported with output_config.effort up to '
                f'"{info.off_max_effort}" for this model; the effort is "{level}".'
            )

    choice = params.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        if not info.forced_tool_use:
            # [O55][S55]: forced tool use (tool_choice any/tool) is a 400 on Opus 5.5, Sonnet 5.5, Fable 5.1.
            raise _bad(
                f"tool_choice: forced tool use (type {choice['type']!r}) is not supported for this model; "
                "use tool_choice type 'auto' or 'none'."
            )
        # [TTW] forced tool use with thinking on is a 400; thinking is on when asked for, or when the
        # model thinks by default (thinking_default adaptive/always) and the request does not turn it
        # off (disabled / between_tools).
        thinks = kind in ("adaptive", "enabled") or (
            kind is None and info.thinking_default in ("adaptive", "always")
        )
        if thinks:
            raise _bad("Thinking may not be enabled when tool_choice forces tool use.")

    messages = params.get("messages")
    if isinstance(messages, list) and messages and messages[-1].get("role") == "assistant":
        if not info.assistant_prefill:
            # [H55][S55]: assistant prefill (a last message from the assistant) is a 400 on 5.x models.
            raise _bad(
                "This model does not support assistant message prefill. "
                "The conversation must end with a user message."
            )


def _or_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def check_breakpoints(ttls: list[str]) -> None:
    """At most 4 cache breakpoints, and no 1 h TTL after a 5 min one (ttls in prefix order)."""
    if len(ttls) > MAX_BREAKPOINTS:
        raise _bad(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(ttls)}."
        )
    seen_short = False
    for ttl in ttls:
        if ttl == "5m":
            seen_short = True
        elif seen_short:
            raise _bad(
                "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block "
                "(longer TTLs must come first)"
            )


def check_params(params: Any, *, in_batch: bool, api_version: str, day: date) -> dict:
    """Raise ParamsError for the first problem in Messages params; return them when valid.

    ``api_version``: the request's ``anthropic-version`` (a batch's: the one it was created with);
    ``day``: today by the emulator's virtual clock (retirement dates are judged against it).
    Cache breakpoints are checked by the caller with ``check_breakpoints`` once it has counted the
    request's parts (that count is needed anyway and is the expensive step).
    """
    if not isinstance(params, dict):
        raise _bad("params: Input should be a valid dictionary")
    for key in params:
        if key not in MESSAGE_KEYS:
            raise _bad(f"{key}: Extra inputs are not permitted")
    versions.check_keys(params, api_version)  # [MIG] sampling params under 2026-10-21
    model = _check_model(params, in_batch=in_batch, day=day)
    info = catalog.model_info(model)
    if "max_tokens" not in params:
        raise _bad("max_tokens: Field required")
    max_tokens = params["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _bad("max_tokens: Input should be a valid integer")
    # Batches need at least 1; the Messages API takes 0 to pre-warm the prompt cache.
    minimum = 1 if in_batch else 0
    if max_tokens < minimum:
        raise _bad(f"max_tokens: Input should be greater than or equal to {minimum}")
    limit = info.max_output_tokens
    if max_tokens > limit:
        raise _bad(
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output "
            f"tokens for {model}"
        )
    if params.get("stream"):
        if in_batch:
            raise _bad("stream: streaming is not supported inside Message Batches requests")
        raise _bad("stream: the emulator does not implement streaming; send stream=false")
    _check_messages(params)
    versions.check_blocks(params["messages"], api_version)  # [VER]
    if params.get("system") is not None:
        _check_blocks("system", params["system"])
    _check_sampling(params)
    versions.check_sampling(params, api_version, info)  # [MIG][S5]
    _check_tools(params)
    _check_schema_output(params, model)
    _check_model_rules(params, info)
    if params.get("cache_control") is not None:
        _check_cache_control("", params["cache_control"])
    return params


def check_count_tokens_params(params: Any, *, api_version: str, day: date) -> dict:
    """Token counting: the version's rules [MIG][VER] and retired models [DEP] apply as on
    /v1/messages; the per-model settings checks (thinking, effort, forced tools, prefill) are not
    applied here (no source says token counting refuses them)."""
    if not isinstance(params, dict):
        raise _bad("request body must be a JSON object")
    versions.check_keys(params, api_version)  # [MIG] sampling params under 2026-10-21
    for key in params:
        if key not in COUNT_TOKENS_KEYS:
            raise _bad(f"{key}: Extra inputs are not permitted")
    model = _check_model(params, in_batch=False, day=day)
    _check_messages(params)
    versions.check_blocks(params["messages"], api_version)  # [VER]
    if params.get("system") is not None:
        _check_blocks("system", params["system"])
    _check_tools(params)
    _check_schema_output(params, model)
    return params
