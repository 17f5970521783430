"""Node keys: the ed25519 identity that signs requests.

A key file holds the 32-byte ed25519 seed as 64 hex digits (plus a newline),
mode 0600 — the same file the ``assay`` CLI uses, ``$ASSAY_HOME/node.key``
(``~/.assay/node.key`` by default). A node's id is its ed25519 public key.

>>> key = NodeKey.from_seed(bytes(32))
>>> key.node_id.hex()[:16]
'3b6a27bcceb6a42d'
>>> verify_signature(key.node_id, b"msg", key.sign(b"msg"))
True
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeyFileError


def assay_home() -> Path:
    """The node's home: ``$ASSAY_HOME``, else ``~/.assay`` (as the CLI)."""
    home = os.environ.get("ASSAY_HOME")
    if home:
        return Path(home)
    return Path.home() / ".assay"


def default_key_file() -> Path:
    """``$ASSAY_HOME/node.key``."""
    return assay_home() / "node.key"


class NodeKey:
    """A node's private signing key.

    Create one with :meth:`load_or_create` (the CLI's key file),
    :meth:`from_seed` or :meth:`generate`.
    """

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._key = private
        self._id = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def from_seed(cls, seed: bytes) -> "NodeKey":
        """A key from its 32-byte seed (tests use fixed seeds)."""
        if len(seed) != 32:
            raise KeyFileError(f"an ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls) -> "NodeKey":
        """A fresh random key (not saved: see :meth:`save`)."""
        return cls.from_seed(os.urandom(32))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "NodeKey":
        """Loads the key file at ``path``.

        Raises :class:`KeyFileError` if it is missing, not 64 hex digits, or
        readable by other users (then ``chmod 600`` it).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyFileError(
                f"no key file at {path}: create one with NodeKey.load_or_create({str(path)!r}) or `assay account`"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise KeyFileError(f"cannot read the key file {path}: {e}") from None
        if os.name == "posix":
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyFileError(
                    f"the key file {path} has permissions {mode:o}; other users could read it — run `chmod 600 {path}`"
                )
        try:
            seed = bytes.fromhex(text.strip())
        except ValueError as e:
            raise KeyFileError(
                f"the key file {path} is not 64 hex digits ({e}); move it away to create a new key"
            ) from None
        if len(seed) != 32:
            raise KeyFileError(
                f"the key file {path} holds {len(seed)} bytes, not 32; move it away to create a new key"
            )
        return cls.from_seed(seed)

    @classmethod
    def load_or_create(cls, path: Optional[Union[str, Path]] = None) -> "NodeKey":
        """Loads the key at ``path`` (default ``$ASSAY_HOME/node.key``), or
        creates one there (mode 0600) if there is none — what the CLI does.

        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> a = NodeKey.load_or_create(os.path.join(d, "node.key"))
        >>> NodeKey.load_or_create(os.path.join(d, "node.key")).node_id == a.node_id
        True
        """
        path = Path(path) if path is not None else default_key_file()
        if path.exists():
            return cls.load(path)
        key = cls.generate()
        key.save(path)
        return key

    def save(self, path: Union[str, Path]) -> None:
        """Writes the key to a new file (mode 0600); refuses to overwrite."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{path} exists already: load it, or move it away first") from None
        except OSError as e:
            raise KeyFileError(f"cannot create the key file {path}: {e}") from None
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(self.seed().hex() + "\n")
            f.flush()
            os.fsync(f.fileno())

    def seed(self) -> bytes:
        """The 32-byte secret seed."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def node_id(self) -> bytes:
        """This node's id: its 32-byte ed25519 public key."""
        return self._id

    def sign(self, message: bytes) -> bytes:
        """A 64-byte ed25519 signature of ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"NodeKey({self._id.hex()[:12]}…)"


def verify_signature(node_id: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is ``node_id``'s ed25519 signature of ``message``."""
    if len(node_id) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(node_id).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
