"""The words the state tables and the output use for where things stand, as enums.

``StrEnum``: each member *is* its string, so it compares, formats and is stored exactly as the bare
string was (``Outcome.SUCCEEDED == "succeeded"``, ``f"'{Outcome.SUCCEEDED}'"`` is ``'succeeded'``).
The values are what users query in SQL and what existing state tables hold: never change one.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one request or text ended (``cb_requests.status`` once answered, ``cb_results.status``,
    the output's ``status``). The first four are the API's result types [BAT]; the last two are ours,
    for an answer the API returned that names no label for a text."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    CANCELED = "canceled"
    EXPIRED = "expired"
    MISSING = "missing"  # the answer has no entry for this text
    INVALID_OUTPUT = "invalid_output"  # the answer's entry for this text is not a valid label


class RequestStatus(StrEnum):
    """A request before its outcome (``cb_requests.status``); then it takes its :class:`Outcome`."""

    SUBMITTING = "submitting"  # intent recorded, the create call not answered
    IN_FLIGHT = "in_flight"  # in a batch the API accepted, or a real-time call under way
    ABANDONED = "abandoned"  # its submission never reached the API: its texts are pending again


class BatchStatus(StrEnum):
    """A submission (``cb_batches.status``): ours around the API's ``processing_status``."""

    SUBMITTING = "submitting"
    IN_PROGRESS = "in_progress"  # the API's processing statuses [BAT]
    CANCELING = "canceling"
    ENDED = "ended"
    COLLECTED = "collected"  # results written
    ABANDONED = "abandoned"  # no batch was found for the intent
    FAILED = "failed"  # the API refused the create call


class OutputStatus(StrEnum):
    """Output statuses that are not an :class:`Outcome` (besides ``skipped_<reason>``)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    RECLASSIFYING = "reclassifying"  # keeps the previous version's label until the new answer is final
    ESCALATING = "escalating"  # answered unsure: keeps that answer until the escalate_to model's is in
    ESCALATED = "escalated"  # the escalate_to model's answer


class PreflightStatus(StrEnum):
    """``cb_preflights.status``."""

    PASSED = "passed"
    REJECTED = "rejected"


# Outcomes another attempt may fix (unless the error is invalid_request_error: see state.py).
RETRYABLE = (Outcome.ERRORED, Outcome.EXPIRED, Outcome.CANCELED, Outcome.MISSING, Outcome.INVALID_OUTPUT)
# Request statuses that hold a text back from being sent again.
IN_FLIGHT = (RequestStatus.SUBMITTING, RequestStatus.IN_FLIGHT)
# Output statuses whose rows carry a label.
LABELLED = (Outcome.SUCCEEDED, OutputStatus.RECLASSIFYING, OutputStatus.ESCALATING, OutputStatus.ESCALATED)
