"""Whether a file is a whole PyTorch file, checked before ``torch.load`` reads it.

``torch.save`` writes a zip archive with a CRC-32 per member, but ``torch.load`` does not check them:
bytes overwritten inside a checkpoint load as wrong weights (or NaN optimizer state) without a word.
:func:`check_torch_file` reads every member and checks its CRC (``zipfile.testzip``: about a third of
the time ``torch.load`` takes, ``python -m benchmarks.checkpoint_integrity``), and
tells a file that is no PyTorch file at all (a text file, an HTML error page) from one that is.
Every checkpoint and weight file rs3d reads goes through it (``rs3d.checkpoint``, ``rs3d.models.convert``).
"""

from __future__ import annotations

import zipfile
from typing import IO

from ..errors import CheckpointError


def check_torch_file(f: IO[bytes], path: str) -> None:
    """Refuse what is not a PyTorch file at all, and a zip-format checkpoint whose CRCs fail
    (``torch.load`` reads such a file without a word); leaves ``f`` at its start."""
    head = f.read(4)
    f.seek(0)
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(f) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, EOFError, ValueError, KeyError, NotImplementedError) as e:
            reason = " ".join(str(e).split())[:200]
            raise CheckpointError(
                f"{path} is damaged (truncated or overwritten?): its zip archive cannot be read ({reason})"
            ) from None
        finally:
            f.seek(0)
        if bad is not None:
            raise CheckpointError(
                f"{path} is damaged: its member {bad} fails the CRC check (bytes changed after it was written)"
            )
    elif head[:1] != b"\x80":  # a pickle: the format torch.save wrote before PyTorch 1.6
        raise CheckpointError(f"{path} is not a checkpoint: not a PyTorch file (it starts with {head!r})")
