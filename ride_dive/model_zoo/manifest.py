"""The model zoo's manifest: one JSON file listing every published checkpoint.

Each entry is keyed by its config's path relative to ``configs/`` (the name users pass to
``model_zoo.get``) and records where the checkpoint lives (relative to the zoo's base URL),
its sha256 and size (checked after every download), and the metrics measured by the run
that produced it. ``MODEL_ZOO.md`` is generated from this file (see ``publish``), so the
table and the downloads cannot drift apart.
"""

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ..config import ConfigError

__all__ = ["ZooEntry", "Manifest", "ManifestError", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ConfigError):
    """A manifest file that is missing, not JSON, or has an invalid entry."""


@dataclass
class ZooEntry:
    """One published checkpoint.

    Attributes:
        name: the config path relative to ``configs/``, e.g.
            ``"FashionMNIST-LT/ride_dive_4e_r32.yaml"``.
        file: the checkpoint's path relative to the base URL.
        sha256: hex digest of the file (64 lowercase hex characters).
        size: file size in bytes.
        method, dataset: short labels for the table.
        metrics: measured on the test split by the producing run: ``top1``, ``many``,
            ``medium``, ``few`` (percent), ``gmacs`` per image, and whatever else the run
            recorded (``val_top1``, ``ece``, router numbers).
        params: parameters of the model built from the config (millions).
        class_counts: training images per class of the producing run (prior-aware
            losses and the number of classes are built from them).
        source: how the checkpoint was made: ``run`` (directory), ``seed``, ``weights``
            (final / best), ``train_command``.
    """

    name: str
    file: str
    sha256: str
    size: int
    method: str = ""
    dataset: str = ""
    metrics: Dict[str, Any] = field(default_factory=dict)
    params: float = 0.0
    class_counts: List[int] = field(default_factory=list)
    source: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        problems = []
        if not self.name.endswith(".yaml"):
            problems.append(f"name '{self.name}' is not a config path ending in .yaml")
        if not self.file or self.file.startswith("/") or ".." in self.file.split("/"):
            problems.append(f"file '{self.file}' must be a relative path inside the zoo")
        if not isinstance(self.sha256, str) or not _SHA256.match(self.sha256):
            problems.append(f"sha256 '{self.sha256}' is not 64 lowercase hex digits")
        if not isinstance(self.size, int) or self.size <= 0:
            problems.append(f"size {self.size!r} is not a positive number of bytes")
        if problems:
            raise ManifestError(f"Invalid model zoo entry '{self.name}': " + "; ".join(problems))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class Manifest:
    """The entries of a manifest file, by name, in file order."""

    def __init__(self, entries: Optional[List[ZooEntry]] = None, base_url: str = ""):
        self.base_url = base_url
        self.entries: Dict[str, ZooEntry] = {}
        for entry in entries or []:
            self.add(entry)

    def add(self, entry: ZooEntry) -> None:
        """Add ``entry``, replacing an entry of the same name."""
        self.entries[entry.name] = entry

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> List[str]:
        return list(self.entries)

    def get(self, name: str) -> ZooEntry:
        """The entry called ``name``.

        Raises:
            ManifestError: no such entry; the message lists the close names.
        """
        if name in self.entries:
            return self.entries[name]
        import difflib

        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ManifestError(
            f"No model zoo entry '{name}'.{hint} The zoo has {len(self)} entries; list "
            "them with `python tools/model_zoo.py list` or ride_dive.model_zoo.list_models()."
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "manifest") -> "Manifest":
        if not isinstance(data, Mapping) or not isinstance(data.get("entries"), list):
            raise ManifestError(f"{where}: expected {{'version', 'base_url', 'entries': [...]}}")
        if data.get("version") != MANIFEST_VERSION:
            raise ManifestError(
                f"{where}: manifest version {data.get('version')!r}; this ride_dive reads "
                f"version {MANIFEST_VERSION}"
            )
        entries = []
        for i, raw in enumerate(data["entries"]):
            try:
                entries.append(ZooEntry(**raw))
            except TypeError as e:  # unknown or missing fields
                raise ManifestError(f"{where}: entry {i}: {e}") from e
        return cls(entries, base_url=str(data.get("base_url", "")))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "base_url": self.base_url,
            "entries": [e.to_dict() for e in self.entries.values()],
        }

    @classmethod
    def load(cls, path: str) -> "Manifest":
        """Read a manifest file.

        Raises:
            FileNotFoundError: no such file.
            ManifestError: not JSON, or an invalid entry (named).
        """
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path} is not valid JSON: {e}") from e
        return cls.from_dict(data, where=path)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
