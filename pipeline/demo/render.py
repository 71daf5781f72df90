"""The demo cloud's answers: routing, fleet payloads rendered as OnApp JSON or Rails XML, modern or pre-4.2."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from xml.sax.saxutils import escape

from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.fleet import Fleet

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
NOT_FOUND = "Resource not found"
NOT_SIGNED_IN = "You need to sign in or sign up before continuing."
FORBIDDEN = "You do not have permissions for this action"
SERVER_ERRORS = {
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}
PROXY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>\n"
)

# Backup fields that OnApp added in API 4.2: older control panels never send them.
LEGACY_MISSING_BACKUP_FIELDS = frozenset(
    {
        "user_id",
        "target_type",
        "target_id",
        "initiated",
        "iqn",
        "note",
        "volume_id",
        "data_store_type",
        "marked_for_delete",
    }
)


def _legacy_value(value: object) -> object:
    # Old APIs quote every number; bool is an int subclass, so keep it out explicitly.
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return value


def legacy_record(record: dict, decimals: Iterable[str] = ()) -> dict:
    """Return a copy of a payload with numbers as strings, as pre-4.2 control panels send them."""
    out = {key: _legacy_value(value) for key, value in record.items()}
    for key in decimals:
        # Decimal columns come out as "51.0", not "51".
        if isinstance(record.get(key), (int, float)) and not isinstance(record.get(key), bool):
            out[key] = str(float(record[key]))
    return out


def legacy_backup(backup: dict) -> dict:
    """Return a backup payload as a pre-4.2 API sends it: fewer fields, quoted numbers, period in backup_type."""
    out = legacy_record({k: v for k, v in backup.items() if k not in LEGACY_MISSING_BACKUP_FIELDS})
    initiated = backup.get("initiated")
    if backup.get("backup_type") == "normal" and initiated not in (None, "manual"):
        # Very old versions had no `initiated`: the schedule period lived in backup_type.
        out["backup_type"] = f"{initiated}-autobackup"
    return out


def render_json(wrapper: str, items: Iterable[dict]) -> bytes:
    """Render a list as OnApp does: a bare JSON array of single-key wrapper objects."""
    return json.dumps(
        [{wrapper: item} for item in items], ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def render_errors(*messages: str) -> bytes:
    """Render an OnApp error body: {"errors": [...]}."""
    return json.dumps({"errors": list(messages)}).encode("utf-8")


def _xml_leaf(key: str, value: object) -> str:
    if value is None:
        return f'<{key} nil="true"/>'
    if isinstance(value, bool):
        kind, text = "boolean", "true" if value else "false"
    elif isinstance(value, int):
        kind, text = "integer", str(value)
    elif isinstance(value, float):
        kind, text = "decimal", repr(value)
    elif key.endswith("_at"):
        kind, text = "datetime", escape(str(value))
    else:
        return f"<{key}>{escape(str(value))}</{key}>"
    return f'<{key} type="{kind}">{text}</{key}>'


def render_xml(root: str, wrapper: str, items: Iterable[dict]) -> bytes:
    """Render a list the way Rails' to_xml does, with OnApp's underscore element names."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    items = list(items)
    if not items:
        lines.append(f'<{root} type="array"/>')
    else:
        lines.append(f'<{root} type="array">')
        for item in items:
            lines.append(f"  <{wrapper}>")
            lines.extend(f"    {_xml_leaf(key, value)}" for key, value in item.items())
            lines.append(f"  </{wrapper}>")
        lines.append(f"</{root}>")
    return ("\n".join(lines) + "\n").encode("utf-8")


_ROUTES = (
    (re.compile(r"/virtual_machines"), "vms"),
    (re.compile(r"/virtual_machines/(\d+)/backups(?:/(images|files))?"), "backups"),
    (re.compile(r"/users"), "users"),
    (re.compile(r"/settings/backup_servers"), "servers"),
)


def route(path: str) -> tuple[str, str, re.Match] | None:
    """Map a URL path to (format, route name, match), or None for an unknown path."""
    fmt = "json"  # no suffix means JSON
    for suffix in (".json", ".xml"):
        if path.endswith(suffix):
            fmt, path = suffix[1:], path[: -len(suffix)]
    for pattern, name in _ROUTES:
        match = pattern.fullmatch(path.rstrip("/"))
        if match:
            return fmt, name, match
    return None


def vanished(vm_id: int, config: DemoCloudConfig) -> bool:
    """Tell whether a listed VM answers 404 on its backups (deleted meanwhile) under this config."""
    # Seeded per VM so the subset is stable across requests, processes and config swaps.
    return bool(config.vanish_fraction) and (
        random.Random(f"vanish:{config.seed}:{vm_id}").random() < config.vanish_fraction
    )


def _positive(query: dict[str, list[str]], key: str, default: int) -> int:
    # Rails apps fall back to the default on garbage rather than failing the request.
    try:
        value = int(query.get(key, [""])[-1])
    except ValueError:
        return default
    return value if value >= 1 else default


def answer(fleet: Fleet, config: DemoCloudConfig, found: tuple[str, str, re.Match],
           query: dict[str, list[str]]) -> tuple[int, bytes, dict[str, str]]:
    """Build (status, body, headers) for a routed data path, before any injected fault."""
    fmt, name, match = found
    headers: dict[str, str] = {}
    if name == "vms":
        per_page = _positive(query, "per_page", config.default_per_page)
        if config.page_size_cap is not None:
            per_page = min(per_page, config.page_size_cap)
        page = 1 if config.ignore_page else _positive(query, "page", 1)
        with fleet.lock:  # the page and the total from one state of the fleet
            items = fleet.vm_list((page - 1) * per_page, page * per_page)
            total = len(fleet.vms)
        if config.pagination_headers:
            headers = {"X-Total": str(total), "X-Page": str(page), "X-Limit": str(per_page)}
        if config.legacy_api:
            items = [legacy_record(vm, decimals=("total_disk_size",)) for vm in items]
        root, wrapper = "virtual_machines", "virtual_machine"
    elif name == "backups":
        vm_id = int(match.group(1))
        with fleet.lock:
            known, items = vm_id in fleet.vms, fleet.backups_of(vm_id)
        if not known or vanished(vm_id, config):
            return 404, render_errors(NOT_FOUND), headers
        if vm_id in config.failing_vm_ids:
            return 500, render_errors(SERVER_ERRORS[500]), headers
        if match.group(2) == "files":  # files: the incremental ones only
            items = [b for b in items if b["backup_type"] == "incremental"]
        if config.legacy_api:
            items = [legacy_backup(b) for b in items]
        root, wrapper = "backups", "backup"
    else:
        if config.admin_refused:
            return 403, render_errors(FORBIDDEN), headers
        source = fleet.users if name == "users" else fleet.backup_servers
        root, wrapper = ("users", "user") if name == "users" else ("backup_servers", "backup_server")
        with fleet.lock:
            items = [dict(source[i]) for i in sorted(source)]
        if config.legacy_api:
            items = [legacy_record(item) for item in items]
    if fmt == "xml":
        return 200, render_xml(root, wrapper, items), headers
    return 200, render_json(wrapper, items), headers
