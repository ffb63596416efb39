"""Files users write by hand (a jobs file, a search space): JSON, or YAML for
``.yaml``/``.yml`` names when pyyaml is installed. Pure: text in, document out."""

from __future__ import annotations

import json
from typing import Any

from pipeline.errors import ConfigError


def parse_document(text: str, source: str) -> Any:
    """The document in ``text``, read as YAML when ``source`` (the file's name, used in
    messages) ends in ``.yaml``/``.yml``, else as JSON; refused in one line when it is
    not valid or pyyaml is missing."""
    if not source.lower().endswith((".yaml", ".yml")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source} is not valid JSON ({exc}): fix it") from None
    try:
        import yaml  # optional: only YAML files need it
    except ImportError:
        raise ConfigError(f"{source} is YAML but pyyaml is not installed: pip install pyyaml, or write JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML ({' '.join(str(exc).split())[:200]}): fix it") from None
