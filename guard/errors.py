"""The guard's one exception tree.

    GuardError
     ├── ConfigError        a policy, token or settings file is invalid; the process refuses to start
     ├── PolicyError        a decision could not be made from a valid policy (a bug, not bad input)
     ├── DetectorError      a detector failed to load or to screen
     ├── UpstreamError      the model endpoint could not be reached or answered in time
     │    ├── UpstreamConnectError   → 502
     │    └── UpstreamTimeoutError   → 504
     ├── RequestError       the caller's request is unacceptable; carries the HTTP status to answer with
     ├── ReviewError        the review store failed or an item was already decided
     │    └── AlreadyDecidedError   → 409
     └── AuditError         an audit record could not be written (the request is refused, 503)

Messages never contain prompt or response text: they are logged and may reach callers.
"""

from __future__ import annotations


class GuardError(Exception):
    """Base of every error the guard raises on purpose."""


class ConfigError(GuardError):
    """Invalid configuration. `str()` names the file, line and field, and what is expected there."""


class PolicyError(GuardError):
    """A valid policy could not produce a decision."""


class DetectorError(GuardError):
    """A detector could not load or screen."""


class UpstreamError(GuardError):
    """The upstream model endpoint failed. `status` is what the guard answers the caller."""

    status = 502


class UpstreamConnectError(UpstreamError):
    status = 502


class UpstreamTimeoutError(UpstreamError):
    status = 504


class RequestError(GuardError):
    """The caller's request is unacceptable: answered with `status` and an API-shaped error body."""

    def __init__(self, status: int, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class ReviewError(GuardError):
    """The review store failed."""


class AlreadyDecidedError(ReviewError):
    """A second decision on an item that was already decided (answered 409)."""


class AuditError(GuardError):
    """An audit record could not be written; the pipeline refuses the request (503) rather than act
    unrecorded. Also raised at startup when an existing log cannot be continued."""
