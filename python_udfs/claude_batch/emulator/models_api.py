"""The Models API: ``GET /v1/models`` and ``GET /v1/models/{model_id}``, from ``_data/models.json``.

Objects are shaped as the SDK types them (``anthropic.types.ModelInfo`` and its
``ModelCapabilities``). Facts come from ``catalog.model_info``:

- ``lifecycle``: ``info.lifecycle_on(today)`` on the virtual clock, so a clock moved past a
  retirement date sees the model retired; our ``legacy`` is ``active`` in the API's three stages
  (SDK:types/model_info.py ``active|deprecated|retired``; a retired model "remains in the catalogue").
- ``created_at``: the release day (the epoch when unknown, as the SDK type allows);
  ``deprecated_at`` / ``retires_at``: the data's dates (null while the model is active, per the SDK).
- ``max_input_tokens`` = context window, ``max_tokens`` = maximum output tokens.
- ``capabilities``: effort (per level; all five levels follow ``effort.supported``, the data holds
  no per-level fact), thinking types, structured outputs (JSON-schema output), batch. The other
  capabilities are placeholders (see ``_PLACEHOLDER``), not facts.

Listing: newest first (release day descending, unknown release days last, then id), the SDK's
cursor pages (``limit`` 1-1000, default 20, ``after_id``/``before_id``; ``{data, has_more,
first_id, last_id}``; a cursor naming no listed model gives an empty page, as the batch list
does), and its ``lifecycle`` filter: without one, active and deprecated models;
retired ones only when asked for (SDK:types/model_list_params.py).

Ids the data file knows only as retired (no other facts: ``catalog.retired_model``) are not in the
catalogue here: retrieving one is a 404 like an unknown id.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Sequence

from .. import catalog
from .errors import ApiError

SDK_LIFECYCLES = ("active", "deprecated", "retired")
DEFAULT_LIFECYCLES = ("active", "deprecated")
_EPOCH = "1970-01-01T00:00:00Z"

# Capabilities models.json holds no fact for: citations, code_execution, image_input, pdf_input,
# server_tools, context_management. PLACEHOLDERS, not facts: every model says "supported" so that
# SDK code reading them parses; nothing in the emulator or the product may rely on these values.
_PLACEHOLDER = True


def _support(value: bool) -> dict:
    return {"supported": bool(value)}


def _timestamp(day: date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00Z"


def sdk_lifecycle(info: catalog.ModelInfo, day: date) -> str:
    stage = info.lifecycle_on(day)
    return "active" if stage == "legacy" else stage


def capabilities(info: catalog.ModelInfo) -> dict:
    effort = info.effort_supported
    types = {kind: _support(info.thinking_types.get(kind, False)) for kind in catalog.THINKING_TYPES}
    # The model can think at all when it accepts a thinking-on type or thinks by default.
    thinks = bool(
        info.thinking_types.get("adaptive") or info.thinking_types.get("enabled") or info.thinks_by_default
    )
    return {
        "batch": _support(True),  # every model in the data is served by Message Batches [BAT]
        "citations": _support(_PLACEHOLDER),
        "code_execution": _support(_PLACEHOLDER),
        "context_management": {"supported": _PLACEHOLDER},
        "effort": {"supported": effort, **{level: _support(effort) for level in catalog.EFFORT_LEVELS}},
        "image_input": _support(_PLACEHOLDER),
        "pdf_input": _support(_PLACEHOLDER),
        "server_tools": {
            "supported": _PLACEHOLDER,
            "code_execution": _support(_PLACEHOLDER),
            "web_search": _support(_PLACEHOLDER),
        },
        "structured_outputs": _support(info.json_schema_output),
        "thinking": {"supported": thinks, "types": types},
    }


def model_object(info: catalog.ModelInfo, day: date) -> dict:
    lifecycle = sdk_lifecycle(info, day)
    active = lifecycle == "active"
    return {
        "type": "model",
        "id": info.name,
        "display_name": info.display_name,
        "created_at": _timestamp(info.released) or _EPOCH,
        "lifecycle": lifecycle,
        # SDK: deprecated_at "null while the model is active"; retires_at "null while the model is
        # active or while no retirement is scheduled".
        "deprecated_at": None if active else _timestamp(info.deprecated_on),
        "retires_at": None if active else _timestamp(info.retires_on),
        "line": info.line,
        "max_input_tokens": info.context_window,
        "max_tokens": info.max_output_tokens,
        "capabilities": capabilities(info),
    }


def _ordered() -> list[catalog.ModelInfo]:
    """Newest first: release day descending, unknown release days last, then id."""
    infos = list(catalog.MODELS.values())
    infos.sort(key=lambda info: info.name)
    infos.sort(key=lambda info: (info.released is None, -(info.released.toordinal() if info.released else 0)))
    return infos


def retrieve(model_id: str, day: date) -> dict:
    """One model by id or alias (the answer names the canonical id); 404 when unknown."""
    if not catalog.is_known(model_id):
        raise ApiError(404, f"model: {model_id}", error_type="not_found_error")
    return model_object(catalog.model_info(model_id), day)


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _lifecycles(query: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    # The SDK sends lists as lifecycle[]=a&lifecycle[]=b (Querystring array_format="brackets").
    raw = [*query.get("lifecycle[]", ()), *query.get("lifecycle", ())]
    values = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    if not values:
        return DEFAULT_LIFECYCLES
    for value in values:
        if value not in SDK_LIFECYCLES:
            raise ApiError(400, f"lifecycle: Input should be 'active', 'deprecated' or 'retired', got {value!r}")
    if len(set(values)) > 3:
        raise ApiError(400, "lifecycle: at most 3 values")
    return tuple(dict.fromkeys(values))


def list_page(query: Mapping[str, Sequence[str]], day: date) -> dict:
    """A page of ``GET /v1/models`` for the parsed query string."""
    raw_limit = _one(query, "limit")
    try:
        limit = 20 if raw_limit is None else int(raw_limit)
    except ValueError:
        raise ApiError(400, "limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit: Input should be between 1 and 1000")
    after_id, before_id = _one(query, "after_id"), _one(query, "before_id")
    wanted = _lifecycles(query)
    objects = [model_object(info, day) for info in _ordered()]
    objects = [obj for obj in objects if obj["lifecycle"] in wanted]
    ids = [obj["id"] for obj in objects]
    # Cursors as in the batch list (server._list_batches): one naming no listed model gives an empty
    # last page (no documented error); both together give the models strictly between the two.
    if (after_id and after_id not in ids) or (before_id and before_id not in ids):
        return {"data": [], "has_more": False, "first_id": None, "last_id": None}
    lo = ids.index(after_id) + 1 if after_id else 0
    hi = max(lo, ids.index(before_id)) if before_id else len(ids)
    if before_id:
        start = max(lo, hi - limit)  # paging toward newer ones: the `limit` nearest before before_id
        page, has_more = objects[start:hi], start > lo
    else:
        page, has_more = objects[lo : lo + limit], lo + limit < hi
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def route(method: str, rest: list[str], query: Mapping[str, Sequence[str]], day: date) -> Any:
    """The answer to ``/v1/models[/{id}]`` (``rest``: the path parts after ``models``)."""
    if method != "GET":
        raise ApiError(405, f"Method {method} is not allowed here (allowed: GET)")
    if not rest:
        return list_page(query, day)
    if len(rest) == 1 and rest[0]:
        return retrieve(rest[0], day)
    raise ApiError(404, "Not found: /v1/models/" + "/".join(rest), error_type="not_found_error")
