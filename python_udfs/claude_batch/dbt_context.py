"""What a classifier reads from the dbt invocation that runs it: its settings and the documented vars.

A dbt Python model only sees the config keys its own file names (``dbt.config.get("x")`` is found by
dbt's parser in the model's source) and no vars at all, so a library function cannot read
``config.meta`` or ``--vars`` through the ``dbt`` object. dbt-duckdb runs Python models in dbt's own
process, though, where the adapter holds the invocation's RuntimeConfig (``cli_vars``, the project's
``vars``) and the parsed manifest (each node's rendered config). ``classify()`` reads them from there:

- settings: the model's ``meta.claude`` (where dbt 1.10+ wants custom config: ``+meta: {claude: {...}}``),
  and, for projects written before, the ``claude`` config key (dbt warns about it as a custom key);
- the vars the README documents, ``claude_dry_run`` and ``claude_reclassify``.

Anything missing (classify called outside dbt, a remote dbt-duckdb environment) gives nothing: the
model's own arguments still work.
"""

from __future__ import annotations

from typing import Any, Callable

SETTINGS_KEY = "claude"
_MISSING = object()


def _adapter() -> Any | None:
    try:
        from dbt.adapters.factory import FACTORY
    except Exception:  # pragma: no cover - dbt-adapters is a dependency
        return None
    for adapter in list(getattr(FACTORY, "adapters", {}).values()):
        if getattr(adapter, "config", None) is not None:
            return adapter
    return None


def model_node(this: Any) -> Any | None:
    """The manifest node of the model whose relation is ``this`` (dbt's ``dbt.this``), or None."""
    adapter = _adapter()
    manifest = getattr(adapter, "_macro_resolver", None) if adapter is not None else None
    nodes = getattr(manifest, "nodes", None)
    if not nodes:
        return None
    want = tuple(str(getattr(this, part, "") or "").lower() for part in ("database", "schema", "identifier"))
    for node in nodes.values():
        if str(getattr(node, "resource_type", "")) != "model":
            continue
        got = tuple(str(getattr(node, part, "") or "").lower() for part in ("database", "schema", "alias"))
        if got == want:
            return node
    return None


def settings(node: Any | None) -> tuple[dict, dict]:
    """The model's settings: ``(meta.claude, legacy claude config key)``, each {} when absent."""
    if node is None:
        return {}, {}
    config = getattr(node, "config", None)
    meta = dict((getattr(config, "meta", None) or {}).get(SETTINGS_KEY) or {})
    extra = getattr(config, "_extra", None) or {}
    legacy = dict(extra.get(SETTINGS_KEY) or {})
    return meta, legacy


def var(node: Any | None, name: str) -> Any:
    """A dbt var as ``var(name)`` would give it to this model (``--vars`` first, then the project's
    ``vars``, package-scoped ones included); ``MISSING`` when unset or outside dbt."""
    adapter = _adapter()
    config = getattr(adapter, "config", None) if adapter is not None else None
    if config is None:
        return _MISSING
    cli = getattr(config, "cli_vars", None) or {}
    if name in cli:
        return cli[name]
    provider = getattr(config, "vars", None)
    if provider is None:
        return _MISSING
    try:
        scoped = provider.vars_for(node, adapter.type()) if node is not None else provider.to_dict()
    except Exception:
        return _MISSING
    return scoped[name] if name in scoped else _MISSING


MISSING = _MISSING

# Vars that switch a setting on for every classifier of the invocation (README: "Operations").
SWITCH_VARS = {"claude_dry_run": "dry_run", "claude_reclassify": "reclassify"}


def resolve(node: Any | None, options: dict | None, warn: Callable[[str], None]) -> tuple[dict, dict]:
    """``(options, forced)`` for ``build_config``: the model's settings (``options`` given to
    ``classify`` win over ``meta.claude``, which wins over the old ``claude`` key), and the settings a
    switch var turns on (they win over everything: ``--vars '{claude_dry_run: true}'`` must never send)."""
    from .config import as_bool

    meta, legacy = settings(node)
    if legacy:
        # One note per model and run: dbt itself warns at `dbt deps` (CustomKeyInConfigDeprecation).
        warn(f"model {getattr(node, 'name', '?')}: the `claude` config key is deprecated (dbt 1.10+ wants custom "
             "config under meta); it is still read, but move it: `+meta: {claude: {...}}` in dbt_project.yml, "
             "`config: {meta: {claude: {...}}}` in a schema file, or `dbt.config(meta={'claude': {...}})`")
    merged = {**legacy, **meta, **(options or {})}
    forced = {}
    for var_name, setting in SWITCH_VARS.items():
        value = var(node, var_name)
        if value is not _MISSING and as_bool(var_name, value):
            forced[setting] = True
    return merged, forced
