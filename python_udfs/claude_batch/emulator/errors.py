"""The API's error JSON: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Status codes and error types follow the public "Errors" page: 400 invalid_request_error,
401 authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large,
429 rate_limit_error, 500 api_error, 529 overloaded_error.
"""

from __future__ import annotations

import json
import secrets
from typing import Mapping

from ..errors import ClaudeBatchError

STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def random_id(prefix: str, length: int = 24) -> str:
    """Ids shaped like the API's (``msgbatch_013Zva2C...``); callers must not parse them."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_request_id() -> str:
    return random_id("req_")


class ApiError(ClaudeBatchError):
    """An HTTP error answer; the server turns it into the API's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or STATUS_TYPES.get(status, "api_error")
        self.headers = dict(headers or {})


class ParamsError(ApiError):
    """A problem inside Messages params (HTTP error on /v1/messages, errored line in a batch)."""


def error_object(error_type: str, message: str, request_id: str | None = None) -> dict:
    body: dict = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    return json.dumps(error_object(error_type, message, request_id)).encode()
