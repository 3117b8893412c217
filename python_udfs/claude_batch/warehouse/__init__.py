"""The warehouse boundary: the abstract :class:`Warehouse` (``base``) and one module per engine.

``Warehouse(session, ...)`` returns the engine for the session a dbt adapter hands a Python model
(``duckdb.DuckDBWarehouse`` for DuckDB). Everything whose SQL text depends on the engine lives in
this package; the rest of claude_batch speaks only the interface (tests/unit/test_warehouse_boundary.py).
"""

from .base import (STAGE_ANSWERS, STAGE_ANSWERS_COLUMNS, STAGE_REQUESTS, STAGE_REQUESTS_COLUMNS, LockedError,
                   ResultShape, Sql, StagedResults, Warehouse, engine_for, quote_ident, quote_literal)
from .duckdb import DuckDBWarehouse, open_database

__all__ = [
    "DuckDBWarehouse", "LockedError", "ResultShape", "STAGE_ANSWERS", "STAGE_ANSWERS_COLUMNS", "STAGE_REQUESTS",
    "STAGE_REQUESTS_COLUMNS", "Sql", "StagedResults", "Warehouse", "engine_for", "open_database", "quote_ident", "quote_literal",
]
