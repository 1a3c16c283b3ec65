"""What a run reaches beyond its app's data (docs/api.md §11-§13), and what it must not record.

``Reach`` is one run's side of the ``http``, ``secrets`` and ``require`` host calls:
outbound requests through the process's ``EgressClient``, the app's secret values
(opened once per configuration change), the app's scripts as modules — of that app
only, whatever name a script asks for. ``complete`` adds the run's outbound calls to its
execution record and masks every secret value of the app in what the record holds
(logs, error, calls) before anything stores or shows it.
"""
import dataclasses

from picloud import cache
from picloud.db import connection
from picloud.egress.host import HttpCalls
from picloud.models import Secret
from picloud.sandbox import HostError
from picloud.vault import vault

HOST_API = (
    ("http", ("request",)),
    ("secrets", ("get",)),
    ("modules", ("source",)),
)
MODULES = frozenset(module for module, _ in HOST_API)


class Reach:
    """One run's outbound calls, secrets and modules."""

    def __init__(self, app_id, *, client, egress_hosts, limits, timeout_seconds):
        self.app_id = app_id
        self.http = HttpCalls(client, egress_hosts=egress_hosts, limits=limits, timeout_seconds=timeout_seconds)

    def begin(self):
        """Start the run's clock (the run has its executor now)."""
        self.http.begin()

    def host(self, module, fn, args):
        """Answer one host call of the run."""
        if len(args) > 1:
            raise HostError(f"{module}.{fn} takes one argument")
        arg = args[0] if args else None
        if module == "http":
            return self.http.request(arg)
        if module == "secrets":
            return secret_values(self.app_id).get(arg) if isinstance(arg, str) else None
        with connection():
            found = cache.script_named(self.app_id, arg) if isinstance(arg, str) else None
        return found.source if found is not None else None

    def record_fields(self, usage):
        """Return what the run's record holds of its reach: usage counting its outbound
        calls, and the calls themselves."""
        usage = dict(usage or {"instructions": 0, "memory_peak_bytes": 0})
        usage["http_requests"] = len(self.http.calls)
        return {"usage": usage, "http_calls": tuple(self.http.calls)}

    def masked(self, record):
        """Return the run's record with the app's secret values masked."""
        return mask_record(record, Masker(secret_values(self.app_id)))


def secret_values(app_id):
    """Return {name: value} of an app's secrets, opened once per configuration change."""
    return cache.cache.get(("secrets", app_id), lambda: _opened(app_id))


def _opened(app_id):
    # Only a miss touches the database: every run asks, to mask what it recorded.
    opener = vault()
    with connection():
        rows = list(Secret.select(Secret.name, Secret.token).where(Secret.app == app_id).tuples())
    return {name: opener.open(token) for name, token in rows}


class Masker:
    """Replace every secret value of an app by ``[secret:NAME]`` in text."""

    def __init__(self, values):
        # Longest first: a value that contains another one is masked whole.
        self._pairs = sorted(
            ((value, f"[secret:{name}]") for name, value in values.items() if value),
            key=lambda pair: -len(pair[0]),
        )

    def __bool__(self):
        return bool(self._pairs)

    def value(self, value):
        """Return a JSON-like value with every secret value masked in its strings."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def text(self, text):
        """Return ``text`` with every secret value masked."""
        if not isinstance(text, str):
            return text
        for value, label in self._pairs:
            if value in text:
                text = text.replace(value, label)
        return text


def mask_record(record, masker):
    """Return an ExecutionRecord with secret values masked in its logs, error, outbound
    calls, input and response."""
    if not masker:
        return record
    error = record.error
    if error:
        error = {**error, "message": masker.text(error.get("message"))}
    return dataclasses.replace(
        record,
        logs=tuple({**entry, "message": masker.text(entry["message"])} for entry in record.logs),
        error=error,
        http_calls=tuple(
            {**call, "url": masker.text(call["url"]), "error": masker.text(call["error"])}
            for call in record.http_calls
        ),
        input=masker.value(record.input),
        response=masker.value(record.response),
    )
