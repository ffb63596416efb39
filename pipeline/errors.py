"""One small hierarchy of typed errors.

Every message is a single line that names the bad value and says what to do next.
"""

from __future__ import annotations

import signal


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` with all whitespace runs (newlines too) as single spaces, cut to
    ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text if text is not None else "").split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


class FanoutError(Exception):
    """Base class for errors raised by spark-fanout; its message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class ConfigError(FanoutError):
    """A parameter or configuration value is invalid."""


class DatasetError(FanoutError):
    """The dataset is missing, unreadable or lacks a needed column."""


class SparkSubmitNotFound(FanoutError):
    """The spark-submit executable cannot be found."""


class JobFailed(FanoutError):
    """A subordinate spark-submit job ended without a complete artifact."""


class JobTimedOut(JobFailed):
    """A job ran past its time limit and was stopped."""


class TaskInterrupted(KeyboardInterrupt):
    """The controller or a task process was asked to stop (SIGTERM, SIGHUP).

    It derives from KeyboardInterrupt on purpose: Luigi re-raises KeyboardInterrupt
    instead of recording a failure and starting the next task, so a stopped run stays
    stopped.
    """

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum


def stop_reason(exc: BaseException) -> str:
    """How a run or a job was stopped, in a few words: ``Ctrl-C (SIGINT)``, ``SIGTERM``."""
    signum = getattr(exc, "signum", None)
    if signum is not None:
        return signal.Signals(signum).name
    if isinstance(exc, TaskInterrupted) and str(exc):
        return one_line(exc, 80)
    return "Ctrl-C (SIGINT)"


class StorageError(FanoutError):
    """A storage operation (local files, HDFS) failed."""


class StorageUnavailable(StorageError):
    """The storage service (e.g. the NameNode) cannot be reached."""


class StoragePermissionDenied(StorageError):
    """The storage refused the operation for lack of permission."""


class KerberosError(FanoutError):
    """No usable Kerberos credentials, or the KDC or a server refused them."""


class NoTicket(KerberosError):
    """There is no Kerberos ticket (no ticket cache, an empty one, or no keytab key)."""


class TicketExpired(KerberosError):
    """The Kerberos ticket has expired: ``kinit`` again (``kinit -R`` while renewable)."""


class ClockSkew(KerberosError):
    """This machine's clock and the KDC's or the server's differ by more than Kerberos allows."""


class UnknownServicePrincipal(KerberosError):
    """The KDC has no principal for the service as the client named it (``HTTP/<host>``)."""

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message)
        self.host = host
