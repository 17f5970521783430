"""assay_client: the Python SDK of the Assay compute market.

It speaks the coordinator's gRPC contract (``proto/assay.proto``), signs
every state-changing request with the node's ed25519 key (the CLI's
``$ASSAY_HOME/node.key``), uploads blobs by content id, publishes jobs,
follows them, downloads and checks their outputs, and verifies receipts.

>>> from assay_client import Client, verify_receipt            # doctest: +SKIP
>>> with Client("http://127.0.0.1:7700") as c:                  # doctest: +SKIP
...     c.faucet()
...     job = c.publish("hello.wasm", params={"name": "py"})
...     c.follow(job.job_id, on_progress=lambda p: print(p.line))
...     print(c.outputs(job.job_id)["greeting.txt"])
...     for r in c.receipts(job.job_id):
...         print(verify_receipt(r).hex())
"""

from .canonical import Encoder, content_id
from .client import (
    DEFAULT_COORDINATOR,
    Account,
    Client,
    Progress,
    Submitted,
    job_spec,
)
from .embeddings import decode_embeddings, load_model, model_dir
from .errors import (
    AssayError,
    AuthError,
    BlobError,
    CoordinatorUnavailable,
    JobError,
    JobFailed,
    JobNotDone,
    JobTimeout,
    KeyFileError,
    ModelError,
    NotFound,
    ReceiptError,
    Refused,
    RequestError,
)
from .keys import NodeKey, assay_home, default_key_file, verify_signature
from .receipts import ReceiptBody, decode_receipt, receipt_id, verify_receipt
from .signing import REQUEST_TTL_MS, sign, signing_bytes

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_COORDINATOR",
    "REQUEST_TTL_MS",
    "Account",
    "AssayError",
    "AuthError",
    "BlobError",
    "Client",
    "CoordinatorUnavailable",
    "Encoder",
    "JobError",
    "JobFailed",
    "JobNotDone",
    "JobTimeout",
    "KeyFileError",
    "ModelError",
    "NodeKey",
    "NotFound",
    "Progress",
    "ReceiptBody",
    "ReceiptError",
    "Refused",
    "RequestError",
    "Submitted",
    "assay_home",
    "content_id",
    "decode_embeddings",
    "decode_receipt",
    "default_key_file",
    "job_spec",
    "load_model",
    "model_dir",
    "receipt_id",
    "sign",
    "signing_bytes",
    "verify_receipt",
    "verify_signature",
]
