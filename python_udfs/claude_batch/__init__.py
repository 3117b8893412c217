"""claude_batch: incremental bulk classification of warehouse rows with Claude's Message Batches API.

``from claude_batch import classify`` in a dbt Python model. Attributes load lazily, so importing a
submodule (the emulator, the UDF plugin) does not pull in dbt and the pipeline.
"""

from typing import Any

__all__ = ["classify", "ConfigError", "ClaudeBatchError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "classify":
        from .pipeline import classify

        return classify
    if name == "ConfigError":
        from .errors import ConfigError

        return ConfigError
    if name == "ClaudeBatchError":
        from .errors import ClaudeBatchError

        return ClaudeBatchError
    raise AttributeError(f"module 'claude_batch' has no attribute {name!r}")
