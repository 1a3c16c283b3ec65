"""The error hierarchy and the handlers that answer JSON or HTML per request.

Every error leaves as ``{"error": {"code", "message", ...extra}}`` with its status,
except under ``/admin`` where a person gets an HTML page.
"""
import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from picloud.db import STORAGE_FULL, UNAVAILABLE, record_failure

log = logging.getLogger(__name__)

# What a client is told to wait before retrying while the database is unavailable.
RETRY_AFTER_SECONDS = 1


class PiCloudError(Exception):
    """Something went wrong."""

    status = 500
    code = "internal_error"

    def __init__(self, message=None, *, code=None, status=None, headers=None, **extra):
        super().__init__(message or self.__doc__)
        self.message = message or self.__doc__
        self.code = code or self.code
        self.status = status or self.status
        self.headers = headers or {}
        self.extra = extra

    def body(self):
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class BadRequest(PiCloudError):
    """The request body is not valid JSON."""

    status = 400
    code = "bad_request"


class Unauthorized(PiCloudError):
    """Missing or invalid credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(PiCloudError):
    """You lack the capability this call needs."""

    status = 403
    code = "forbidden"

    def __init__(self, capability, message=None):
        super().__init__(
            message or f"This call needs the {capability} capability.",
            capability=capability,
        )


class NotFound(PiCloudError):
    """No such object."""

    status = 404
    code = "not_found"


class Conflict(PiCloudError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class PayloadTooLarge(PiCloudError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class ValidationFailed(PiCloudError):
    """A field is invalid."""

    status = 422
    code = "validation_failed"

    def __init__(self, field, message, *, code=None, **extra):
        super().__init__(message, code=code, field=field, **extra)


class TooManyRequests(PiCloudError):
    """Too many failed attempts; try again later."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after, message=None):
        super().__init__(message, headers={"Retry-After": str(int(retry_after))})


class DatabaseUnavailable(PiCloudError):
    """The database cannot be reached right now; try again in a moment."""

    status = 503
    code = "database_unavailable"

    def __init__(self, message=None):
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class StorageFull(PiCloudError):
    """The server's disk is full, so this change was not saved; reading still works."""

    status = 507
    code = "storage_full"


def database_error(exc):
    """Return the PiCloudError a client sees for a database failure it may retry, or None."""
    kind = record_failure(exc)
    if kind == UNAVAILABLE:
        return DatabaseUnavailable()
    if kind == STORAGE_FULL:
        return StorageFull()
    return None


# Codes for the HTTP errors werkzeug raises itself (routing, body size).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "too_many_requests",
}


def wants_html():
    """Tell whether this request came from a person in the dashboard."""
    return request.path == "/admin" or request.path.startswith("/admin/")


def error_response(error):
    """Render a PiCloudError as JSON or as an HTML page."""
    if wants_html():
        body = render_template("errors/error.html", error=error)
    else:
        body = jsonify(error.body())
    return body, error.status, error.headers


def handle_http_exception(exc):
    """Answer werkzeug's own HTTP errors in the API's shape."""
    code = _HTTP_CODES.get(exc.code, "http_error")
    error = PiCloudError(exc.description, code=code, status=exc.code)
    headers = dict(exc.get_headers())
    headers.pop("Content-Type", None)
    error.headers = headers
    return error_response(error)


def handle_unexpected(exc):
    """Answer 503 or 507 for a database failure a retry may get past, else 500 internal_error."""
    error = database_error(exc)
    if error is not None:
        log.warning("%s on %s %s: %s", error.code, request.method, request.path, exc)
        return error_response(error)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(PiCloudError("An internal error occurred."))


def init_app(app):
    app.register_error_handler(PiCloudError, error_response)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
