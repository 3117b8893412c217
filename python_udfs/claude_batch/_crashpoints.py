"""Named crash points for the crash suite (a test hook: private to the package).

``CLAUDE_BATCH_CRASH_AT=<step>`` kills the process (SIGKILL: no cleanup, no rollback handlers) when
it reaches that step, so tests can prove every crash window is safe. Unset, it costs one dict lookup.

Steps, in the order a run meets them: ``after_intent`` (intent written, create not called),
``after_create`` (the API created the batch, its id not recorded), ``after_submitted`` (id recorded),
``after_download`` (results on local disk, nothing written), ``after_collect_write`` (results
written and the batch marked collected), ``before_output`` (state done, the model's table not yet
merged by dbt). ``INNER_STEPS`` are the windows between the single-table writes of one transition.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "CLAUDE_BATCH_CRASH_AT"
STEPS = ("after_intent", "after_create", "after_submitted", "after_download", "after_collect_write", "before_output")
# Inside a transition, between its single-table writes (docs/state-machine.md, "Single-table writes"):
# the intent's requests and items written, its cb_batches row not; the submission marked in flight,
# its requests not; the results written, the submission not marked collected.
INNER_STEPS = ("intent_before_commit", "submitted_before_requests", "collect_before_commit")


def checkpoint(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
