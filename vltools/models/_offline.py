"""Keep model loaders that take no ``local_files_only`` (open_clip) off the network, briefly.

open_clip resolves pretrained tags and HF text towers through huggingface_hub without a
``local_files_only`` switch. Instead of setting ``HF_HUB_OFFLINE`` in the host's environment for
the rest of the process, `hub_offline()` turns huggingface_hub's offline flag on only while a
load runs (reference-counted across threads) and restores the host's value afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED: bool | None = None


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """huggingface_hub answers from its local cache only inside the block."""
    global _DEPTH, _SAVED
    try:
        from huggingface_hub import constants
    except ImportError:  # nothing to keep offline
        yield
        return
    with _LOCK:
        if _DEPTH == 0:
            _SAVED = constants.HF_HUB_OFFLINE
            constants.HF_HUB_OFFLINE = True
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0:
                constants.HF_HUB_OFFLINE = bool(_SAVED)
                _SAVED = None
