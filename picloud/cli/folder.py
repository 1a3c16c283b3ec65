"""An app bundle as a folder: ``picloud.toml`` for the configuration, ``scripts/<name>.lua`` for sources.

TOML has no null: a field whose value is null is left out of ``picloud.toml``, and a field
left out is read back as null (or, for a script, as the default), so a folder says the
whole truth about its app.
"""
import pathlib
import tomllib

import tomli_w

MANIFEST = "picloud.toml"
SCRIPTS = "scripts"
SUFFIX = ".lua"
HEADER = (
    "# A PiCloud app: `picloud deploy` applies this folder, `picloud pull` rewrites it.\n"
    "# Script sources live in scripts/<name>.lua; this file holds everything else.\n\n"
)
APP_FIELDS = ("name", "description", "egress_hosts", "max_concurrency")
ROUTE_ORDER = ("method", "path", "host", "script", "dispatch_mode", "enabled", "retry")
TRIGGER_ORDER = ("kind", "script", "key_glob", "collection_glob", "cron", "timezone", "ops", "enabled", "retry")


class FolderError(Exception):
    """The folder is not an app: a missing or unreadable file, or a bad picloud.toml."""


def write_folder(bundle, directory):
    """Write a bundle into ``directory``; remove ``.lua`` files of scripts it no longer has."""
    directory = pathlib.Path(directory)
    scripts_dir = directory / SCRIPTS
    scripts_dir.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(manifest_text(bundle), encoding="utf-8")
    for script in bundle["scripts"]:
        with open(scripts_dir / (script["name"] + SUFFIX), "w", encoding="utf-8", newline="") as out:
            out.write(script["source"])
    names = {s["name"] for s in bundle["scripts"]}
    stale = sorted(p for p in scripts_dir.glob("*" + SUFFIX) if p.stem not in names)
    for path in stale:
        path.unlink()
    return stale


def manifest_text(bundle):
    """Return ``picloud.toml`` for a bundle: fields in a reading order, one section per thing."""
    head = {
        "format": bundle["format"],
        "domains": bundle["domains"],
        "app": _ordered(bundle["app"], ("slug",) + APP_FIELDS),
        "scripts": {s["name"]: _script_settings(s) for s in bundle["scripts"]},
    }
    parts = [HEADER, _dumps(head)]
    for section, order in (("routes", ROUTE_ORDER), ("triggers", TRIGGER_ORDER)):
        for entry in bundle[section]:
            parts.append(_array_entry(section, _ordered(entry, order)))
    return "\n".join(part.rstrip("\n") + "\n" for part in parts if part)


def _array_entry(section, entry):
    """Write one ``[[section]]`` entry, its tables (a retry policy) as ``[section.name]`` after it."""
    plain = {k: v for k, v in entry.items() if not isinstance(v, dict)}
    text = f"[[{section}]]\n" + _dumps(plain)
    for key, value in entry.items():
        if isinstance(value, dict):
            text += f"\n[{section}.{key}]\n" + _dumps(value)
    return text


def _dumps(table):
    return tomli_w.dumps(table, multiline_strings=True)


def _ordered(entry, order):
    """Return the entry without nulls, its known fields in ``order`` and any others after them."""
    known = [k for k in order if k in entry] + sorted(k for k in entry if k not in order)
    return {k: entry[k] for k in known if entry[k] is not None}


def read_folder(directory):
    """Return the bundle a folder holds, for the server to check."""
    directory = pathlib.Path(directory)
    manifest = _read_manifest(directory / MANIFEST)
    settings = manifest.pop("scripts", {})
    if not isinstance(settings, dict):
        raise FolderError(f"{MANIFEST}: scripts must be a table of [scripts.<name>] sections.")
    sources = _read_sources(directory / SCRIPTS)
    described = sorted(set(settings) - set(sources))
    if described:
        raise FolderError(f"{MANIFEST} describes the script {described[0]!r} but {SCRIPTS}/{described[0]}{SUFFIX} is missing.")
    app = manifest.pop("app", {})
    if not isinstance(app, dict):
        raise FolderError(f"{MANIFEST}: app must be a table ([app]).")
    return {
        **manifest,
        "format": manifest.get("format"),
        "app": {**app, **{field: app.get(field) for field in APP_FIELDS}},
        "domains": manifest.get("domains", []),
        "scripts": [{**_settings_of(settings.get(name, {}), name), "name": name, "source": source}
                    for name, source in sorted(sources.items())],
        "routes": manifest.get("routes", []),
        "triggers": manifest.get("triggers", []),
    }


def app_of(directory):
    """Return the slug in a folder's ``[app]`` section, or None."""
    app = _read_manifest(pathlib.Path(directory) / MANIFEST).get("app", {})
    return app.get("slug") if isinstance(app, dict) else None


def script_file(name):
    """Return where a script's source lives in the folder."""
    return f"{SCRIPTS}/{name}{SUFFIX}"


def _read_manifest(path):
    try:
        with open(path, "rb") as manifest:
            return tomllib.load(manifest)
    except FileNotFoundError:
        raise FolderError(f"{path} is missing: is this an app folder? (`picloud pull APP DIR` makes one)") from None
    except tomllib.TOMLDecodeError as exc:
        raise FolderError(f"{path}: {exc}") from None
    except OSError as exc:
        raise FolderError(f"Cannot read {path}: {exc}") from None


def _read_sources(scripts_dir):
    sources = {}
    for path in sorted(scripts_dir.glob("*" + SUFFIX)):
        try:
            with open(path, encoding="utf-8", newline="") as source:
                sources[path.stem] = source.read()
        except UnicodeDecodeError:
            raise FolderError(f"{path} is not UTF-8 text.") from None
        except OSError as exc:
            raise FolderError(f"Cannot read {path}: {exc}") from None
    return sources


def _script_settings(script):
    settings = {"description": script["description"], "timeout_seconds": script["timeout_seconds"]}
    if script["sandbox"]:
        settings["sandbox"] = script["sandbox"]
    return settings


def _settings_of(settings, name):
    if not isinstance(settings, dict):
        raise FolderError(f"{MANIFEST}: scripts.{name} must be a table.")
    return settings
