"""Where the CLI connects: ``--url``/``--token``, ``WFE_URL``/``WFE_TOKEN``, or a named profile.

Profiles live in ``$WFE_CONFIG``, else ``$XDG_CONFIG_HOME/wfe/config.toml``, else
``~/.config/wfe/config.toml``::

    default = "prod"

    [profiles.prod]
    url = "https://wfe.example.com"
    token = "0123..."

Each of the URL and the token is taken from the first place that has it: the option, the environment, the
profile (``--profile``, else ``WFE_PROFILE``, else ``default``). ``Connection.source`` says which, so every
error can name the server and where its address came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"


class ConfigError(ValueError):
    """The config file or a profile is unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    profile: str | None  # the profile used, if any
    source: str  # for people: "profile 'prod' (~/.config/wfe/config.toml)", "--url", "WFE_URL", ...


def config_path() -> Path:
    if explicit := os.environ.get("WFE_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wfe" / "config.toml"


def load(path: Path | None = None) -> dict[str, Any]:
    """The config file as a dict (empty when there is none)."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path}: [profiles.<name>] must be tables with url and token")
    return data


def save(data: dict[str, Any], path: Path | None = None) -> Path:
    """Write the config (mode 0600: it holds tokens). TOML basic strings take JSON's escapes."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    if data.get("default"):
        lines += [f"default = {json.dumps(data['default'])}", ""]
    for name, profile in sorted(data.get("profiles", {}).items()):
        lines.append(f"[profiles.{json.dumps(name)}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in profile.items() if isinstance(value, str)]
        lines.append("")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    return path


def resolve(url: str | None = None, token: str | None = None, profile: str | None = None) -> Connection:
    """The connection the options, the environment and the config file describe, in that order."""
    path = config_path()
    wanted = profile or os.environ.get("WFE_PROFILE")
    data = load(path) if (wanted or not (url or os.environ.get("WFE_URL"))) else {}
    profiles = data.get("profiles", {})
    name = wanted or data.get("default")
    chosen: dict[str, Any] = {}
    if name:
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"No profile {name!r} in {path} (profiles: {known}); add it with `wfe profile add`"
            )
        chosen = profiles[name]
    where = f"profile {name!r} ({path})"
    if url:
        found_url, source = url, "--url"
    elif os.environ.get("WFE_URL"):
        found_url, source = os.environ["WFE_URL"], "WFE_URL"
    elif chosen.get("url"):
        found_url, source = str(chosen["url"]), where
    else:
        found_url, source = DEFAULT_URL, "the default URL (no --url, WFE_URL or profile)"
    found_token = token or os.environ.get("WFE_TOKEN") or chosen.get("token")
    used_profile = name if chosen and source == where else None
    return Connection(found_url.rstrip("/"), found_token, used_profile, source)
