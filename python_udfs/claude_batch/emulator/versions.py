"""API versions: the ``anthropic-version`` header picks the rules a request is judged by.

The rules are data, read from ``_data/models.json`` through ``catalog.api_version_rules`` (nothing
about a version is written here). Each rule this module knows:

- ``rejects_params``: body keys that are a 400 under this version, whatever their value (2026-10-21:
  ``temperature``, ``top_p``, ``top_k``, "400 even at default values" [MIG]);
- ``rejects_assistant_document_blocks``: a ``document`` block directly in an ``assistant`` message
  is a 400 [VER];
- ``rejects_user_text_citations``: a user ``text`` block with non-empty ``citations`` is a 400 [VER];
- ``non_default_sampling_rejected_from_tokenizer``: models with this tokenizer generation or a later
  one reject non-default sampling (2023-06-01 on Claude 4.7+/5.x [MIG][S5]). Kept simple: only
  ``temperature`` 1.0 is accepted there, any ``top_p``/``top_k`` is refused.

They apply to ``POST /v1/messages``, ``POST /v1/messages/count_tokens`` and each request of a batch,
judged by the version the batch was created with [MIG] (kept in its meta.json). A missing header is
a 400 (the API requires it [VER]); an unknown version is a 400 naming the value.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Mapping

from .. import catalog
from ..errors import ClaudeBatchError
from .errors import ApiError, ParamsError

HEADER = "anthropic-version"

# Every key a version's entry in models.json may hold. A rule added to the data file that this
# module does not implement must fail loudly (tests/emulator/test_api_versions.py), not be ignored.
RULE_KEYS = frozenset(
    {
        "rejects_params",
        "rejects_assistant_document_blocks",
        "rejects_user_text_citations",
        "non_default_sampling_rejected_from_tokenizer",
    }
)
INFO_KEYS = frozenset({"source", "applies_to"})

# Batches created before the emulator kept their version in meta.json: the old emulator judged them
# by 2023-06-01's rules (sampling parameters accepted), the version every SDK up to 1.x sent (REF §1).
LEGACY_BATCH_VERSION = "2023-06-01"


def resolve(value: str | None) -> str:
    """The version named by the header, or ApiError 400 (missing or unknown)."""
    if value is None or not value.strip():
        # [VER]: every request names its API version; the API refuses one that does not.
        raise ApiError(400, f"{HEADER}: header is required")
    version = value.strip()
    try:
        catalog.api_version_rules(version)
    except ClaudeBatchError:
        known = ", ".join(sorted(catalog.api_versions()))
        raise ApiError(400, f"{HEADER}: {version!r} is not a valid version (known: {known})") from None
    return version


def rules(version: str) -> Mapping[str, Any]:
    return catalog.api_version_rules(version)


def day_of(epoch: float) -> date:
    """The UTC day of a virtual-clock time: what retirement dates are judged against."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).date()


def _bad(message: str) -> ParamsError:
    return ParamsError(400, message)


def rejected_keys(version: str) -> frozenset[str]:
    """Body keys this version refuses whatever their value ([MIG] for 2026-10-21)."""
    return frozenset(rules(version).get("rejects_params") or ())


def check_keys(params: Mapping[str, Any], version: str) -> None:
    """400 for a key the version refuses, worded as the API words an unexpected key [MIG]
    (message seen: ``temperature: Extra inputs are not permitted``, REF §1)."""
    refused = rejected_keys(version)
    for key in params:
        if key in refused:
            raise _bad(f"{key}: Extra inputs are not permitted")


def check_blocks(messages: Any, version: str) -> None:
    """Content rules of the version on already shape-checked ``messages`` [VER]."""
    version_rules = rules(version)
    no_documents = bool(version_rules.get("rejects_assistant_document_blocks"))
    no_citations = bool(version_rules.get("rejects_user_text_citations"))
    if not (no_documents or no_citations) or not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        role = message.get("role")
        for j, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if no_documents and role == "assistant" and kind == "document":
                # [VER] 2026-10-21: a document block directly in an assistant message is a 400.
                raise _bad(
                    f"messages.{i}.content.{j}: document blocks are not permitted in assistant messages "
                    f"(anthropic-version {version})"
                )
            if no_citations and role == "user" and kind == "text" and block.get("citations"):
                # [VER] 2026-10-21: a user text block with non-empty citations is a 400.
                raise _bad(
                    f"messages.{i}.content.{j}.citations: citations are not permitted on user text blocks "
                    f"(anthropic-version {version})"
                )


def _tokenizer_rank(name: str) -> int:
    # The tokenizers in models.json are listed oldest generation first ("claude-4", "claude-4.7"):
    # "from tokenizer X" means X and every one listed after it.
    order = list(catalog.data()["tokenizers"])
    return order.index(name) if name in order else len(order)


def check_sampling(params: Mapping[str, Any], version: str, info: catalog.ModelInfo) -> None:
    """Non-default sampling on models that refuse it under ``version`` ([MIG][S5]: 2023-06-01
    takes the parameters, but Claude 4.7+ and 5.x models reject non-default values)."""
    start = rules(version).get("non_default_sampling_rejected_from_tokenizer")
    if not start or _tokenizer_rank(info.tokenizer) < _tokenizer_rank(start):
        return
    temperature = params.get("temperature")
    if temperature is not None and temperature != 1.0:
        raise _bad(
            f"temperature: {info.name} only accepts the default value 1.0 "
            f"(anthropic-version {version})"
        )
    for key in ("top_p", "top_k"):
        if params.get(key) is not None:
            raise _bad(f"{key}: {info.name} does not accept {key} (anthropic-version {version})")
