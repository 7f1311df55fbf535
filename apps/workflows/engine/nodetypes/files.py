"""The checks file nodes share: a path inside the sandbox's file roots and out of the engine's own files
(``engine/paths.py``), and a text encoding."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.paths import FilePathError, resolve_path
from apps.workflows.engine.sandbox import Sandbox


def path_problems(
    config: Mapping[str, Any], sandbox: Sandbox, key: str = "path", *, for_writing: bool = False
) -> Problems:
    """``check`` helper: the path policy's verdict on ``config[key]``, as a validation problem."""
    try:
        resolve_path(config[key], sandbox.file_roots, sandbox.private_paths, for_writing=for_writing)
    except FilePathError as exc:
        return {key: [str(exc)]}
    return {}


def encoding_problems(config: Mapping[str, Any], key: str = "encoding") -> Problems:
    """Only text encodings: ``codecs.lookup`` also knows bytes-to-bytes codecs (zlib_codec, base64_codec,
    rot13...) that ``open()`` refuses only once a node runs."""
    try:
        info = codecs.lookup(config[key])
    except (LookupError, ValueError):  # ValueError: a NUL character in the name
        return {key: [f"Unknown encoding {config[key][:100]!r}."]}
    if not getattr(info, "_is_text_encoding", True):
        return {key: [f"{config[key]!r} is not a text encoding; use one such as utf-8, latin-1 or cp1252."]}
    return {}
