"""The canonical binary encoding every Assay hash and signature covers.

The same rules as ``assay_protocol::canonical::Encoder`` (Rust): integers
are fixed-width little-endian; byte strings and text are a ``u64``
little-endian length then the bytes; a message starts with its domain tag
encoded as text, so a signature over one kind of message never passes as
another.

>>> Encoder("d").u8(7).bytes(b"ab").finish().hex()
'0100000000000000640702000000000000006162'
"""

from __future__ import annotations

import struct

import blake3


class Encoder:
    """An append-only canonical encoder (methods chain).

    >>> Encoder("d").u32(1).finish() == struct.pack("<Q", 1) + b"d" + struct.pack("<I", 1)
    True
    """

    def __init__(self, domain: str) -> None:
        self._buf = bytearray()
        self.str(domain)

    def u8(self, v: int) -> "Encoder":
        """Appends one byte."""
        self._buf += struct.pack("<B", v)
        return self

    def u32(self, v: int) -> "Encoder":
        """Appends a little-endian ``u32``."""
        self._buf += struct.pack("<I", v)
        return self

    def u64(self, v: int) -> "Encoder":
        """Appends a little-endian ``u64``."""
        self._buf += struct.pack("<Q", v)
        return self

    def bytes(self, v: bytes) -> "Encoder":
        """Appends a ``u64`` length then the bytes."""
        self.u64(len(v))
        self._buf += v
        return self

    def str(self, v: str) -> "Encoder":
        """Appends UTF-8 text, length-prefixed like :meth:`bytes`."""
        return self.bytes(v.encode("utf-8"))

    def fixed32(self, v: bytes) -> "Encoder":
        """Appends a 32-byte value with no length prefix."""
        if len(v) != 32:
            raise ValueError(f"expected 32 bytes, got {len(v)}")
        self._buf += v
        return self

    def finish(self) -> bytes:
        """The encoded bytes."""
        return bytes(self._buf)

    def hash(self) -> bytes:
        """blake3 of the encoded bytes."""
        return blake3.blake3(bytes(self._buf)).digest()


def content_id(data: bytes) -> bytes:
    """A blob's content id: blake3 of its bytes (32 bytes).

    >>> content_id(b"").hex()
    'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
    """
    return blake3.blake3(data).digest()
