"""Is the Hugging Face Hub usable? Answered in seconds, so offline runs fail fast.

Left alone, `from_pretrained` on an unreachable Hub retries for about half a minute before it
fails; the pipeline asks once, with a short timeout, and explains what to do instead.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
OFFLINE_HELP = (
    "The Hugging Face Hub is not reachable from here{why}. Either download the files on a machine "
    "that has the Hub and point the param at a local folder, or set HF_HUB_OFFLINE=1 and use "
    "what is already in the Hugging Face cache."
)


def hub_offline_reason() -> str | None:
    """None when the Hub answers; otherwise a short reason (offline mode, DNS, refused)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    return _probe(constants.ENDPOINT)


@cache
def _probe(endpoint: str) -> str | None:
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:  # behind a proxy the direct probe says nothing; let the client try
        return None
    try:
        with socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT_S):
            return None
    except OSError as error:
        return f"{url.hostname}: {error.strerror or error}"


def offline_help(reason: str) -> str:
    return OFFLINE_HELP.format(why=f" ({reason})")
