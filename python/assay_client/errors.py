"""One exception hierarchy for everything the SDK raises.

Every message says what went wrong *and* what to do about it. Catch
:class:`AssayError` to handle them all::

    try:
        client.faucet()
    except AssayError as e:
        print(e)
"""

from __future__ import annotations

from typing import Optional

import grpc


class AssayError(Exception):
    """Base class of every error the SDK raises."""


class KeyFileError(AssayError):
    """The node key file cannot be read, written, or is not a key (or is
    readable by other users: ``chmod 600`` it)."""


class RequestError(AssayError):
    """The coordinator answered a call with an error status.

    ``code`` is the gRPC status code, ``details`` the coordinator's message.
    """

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class CoordinatorUnavailable(RequestError):
    """The coordinator could not be reached (not running, wrong URL, or
    down). Start one (``assay devnet``) or pass the right URL."""


class AuthError(RequestError):
    """The coordinator refused the request's signature, expiry or nonce."""


class NotFound(RequestError):
    """The coordinator does not know the job, blob or account."""


class Refused(RequestError):
    """The coordinator refused the request itself (bad argument, not enough
    balance, a limit)."""


class BlobError(AssayError):
    """A downloaded blob does not hash to its content id, or is larger than
    declared."""


class ReceiptError(AssayError):
    """A receipt is malformed or its signature does not verify."""


class JobError(AssayError):
    """A job cannot be followed or read as asked."""


class JobFailed(JobError):
    """The job failed (a shard ran out of attempts); the message says why
    per shard."""


class JobNotDone(JobError):
    """Outputs were asked for before every shard was done: ``follow`` the
    job first."""


class JobTimeout(JobError):
    """The job did not finish in the time given to ``follow``."""


class ModelError(AssayError):
    """The MiniLM model files are missing or not the pinned ones: run
    ``assay model fetch``."""


def _hint(code: grpc.StatusCode, details: str, url: str) -> str:
    """What to do about a status, in words."""
    if code == grpc.StatusCode.UNAVAILABLE:
        return (
            f"cannot reach the coordinator at {url} ({details}): is it running? "
            "Start a local one with `assay devnet`, or pass the coordinator's URL "
            "(Client('http://HOST:PORT') or ASSAY_COORDINATOR)"
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return (
            f"the coordinator at {url} refused the request's signature: {details} "
            "(check that this machine's clock is right — signed requests expire after a minute — "
            "and that the key file is the one you meant)"
        )
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return f"the coordinator at {url} refused a replayed request: {details} (send a freshly signed one)"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"not found on the coordinator at {url}: {details}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the coordinator at {url} did not answer in time: {details} (retry, or raise Client(timeout=…))"
    if code == grpc.StatusCode.FAILED_PRECONDITION and "balance" in details.lower():
        return f"{details} (on a devnet, get funds with client.faucet())"
    return f"the coordinator at {url} refused the request ({code.name}): {details}"


def from_rpc(e: grpc.RpcError, url: str) -> RequestError:
    """Maps a gRPC error to the SDK's exception for it."""
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else str(e)) or ""
    message = _hint(code, details, url)
    cls: type[RequestError]
    if code == grpc.StatusCode.UNAVAILABLE:
        cls = CoordinatorUnavailable
    elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ALREADY_EXISTS):
        cls = AuthError
    elif code == grpc.StatusCode.NOT_FOUND:
        cls = NotFound
    else:
        cls = Refused
    return cls(message, code=code, details=details)
