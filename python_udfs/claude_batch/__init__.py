"""claude_batch: incremental bulk classification of warehouse rows with Claude's Message Batches API.

Import what a dbt Python model needs from here; the emulator lives in ``claude_batch.emulator`` and
is never imported by the pipeline.
"""

from .config import ConfigError
from .pipeline import classify

__all__ = ["classify", "ConfigError"]
__version__ = "0.1.0"
