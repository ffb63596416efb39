"""Read Hadoop's ``*-site.xml`` files from ``HADOOP_CONF_DIR``.

Parsing is pure (:func:`parse_site_xml`); :func:`load_site` only finds and reads files.
"""

from __future__ import annotations

import getpass
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline.errors import ConfigError


def parse_site_xml(text: str, source: str = "<string>") -> dict[str, str]:
    """Return the ``name -> value`` pairs of a Hadoop configuration document."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ConfigError(f"{source} is not valid XML ({exc}): fix or remove it") from None
    props: dict[str, str] = {}
    for prop in root.iter("property"):
        name = (prop.findtext("name") or "").strip()
        if name:
            props[name] = (prop.findtext("value") or "").strip()
    return props


def hadoop_user() -> str:
    """The user Hadoop clients act as without Kerberos: ``$HADOOP_USER_NAME``, else the
    login user."""
    user = os.environ.get("HADOOP_USER_NAME", "").strip()
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise ConfigError("cannot tell which Hadoop user to act as: set HADOOP_USER_NAME (or [webhdfs] user)") from None


def hadoop_conf_dir(explicit: str | None = None) -> Path | None:
    """The configuration folder: ``explicit``, else ``$HADOOP_CONF_DIR``, else
    ``$HADOOP_HOME/etc/hadoop``; ``None`` when none is set."""
    for candidate in (explicit, os.environ.get("HADOOP_CONF_DIR")):
        if candidate:
            return Path(candidate)
    home = os.environ.get("HADOOP_HOME")
    if home:
        return Path(home) / "etc" / "hadoop"
    return None


def load_site(name: str, conf_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Properties of ``<conf dir>/<name>`` (e.g. ``yarn-site.xml``); empty if absent."""
    folder = Path(conf_dir) if conf_dir else hadoop_conf_dir()
    if folder is None:
        return {}
    path = folder / name
    if not path.is_file():
        return {}
    return parse_site_xml(path.read_text(encoding="utf-8"), source=str(path))
