"""A file's content digest: what tells two copies of a video apart without decoding them.

The fast digest hashes the size and the first and last MiB (a whole file of up to 2 MiB): a
re-encode, a truncated download or a different cut changes the container header at the start or
the index at the end (MP4 writes ``moov`` at one end, Matroska its cues at the end, AVI its index at
the end). ``full=True`` hashes every byte, for when a change in the middle must be seen too. The
kind is part of the digest (``fast:`` / ``full:``), so digests of the two kinds are never compared.
"""

from __future__ import annotations

import hashlib
import os

MIB = 1 << 20
KINDS = ("fast", "full")
_BLOCK = 4 * MIB


def content_digest(path: str, full: bool = False) -> str:
    """``fast:<32 hex>`` or ``full:<32 hex>`` (BLAKE2b-128) of the file at ``path``; raises OSError."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        if full or size <= 2 * MIB:
            while True:
                block = f.read(_BLOCK)
                if not block:
                    break
                h.update(block)
        else:
            h.update(f.read(MIB))
            f.seek(size - MIB)
            h.update(f.read(MIB))
    return f"{'full' if full else 'fast'}:{h.hexdigest()}"


def digest_kind(digest: str) -> str:
    """``fast`` or ``full`` (the prefix of a digest)."""
    return digest.partition(":")[0]
