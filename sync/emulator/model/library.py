"""A site's document library ("Shared Documents"; Graph calls its drive "Documents"): folders and files.

Paths here are relative to the library's root folder, ``/``-separated, without leading or trailing
slashes (``""`` is the root). SharePoint matches them case-insensitively, so they are keyed in
lower case and keep the case they were created with for display.
"""

from __future__ import annotations

import base64
import mimetypes
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["Library", "LibraryError", "LibraryFile", "clean_path"]

_BAD_CHARS = set('"*:<>?\\|#%')


class LibraryError(Exception):
    """A path that cannot name a file or folder, or a folder that is missing."""


@dataclass
class LibraryFile:
    path: str  # display path relative to the library root, e.g. "Reports/agents.csv"
    content: bytes
    created: datetime
    modified: datetime
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 1

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def mime_type(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    @property
    def etag(self) -> str:
        return f'"{{{self.unique_id.upper()}}},{self.version}"'


def clean_path(path: str) -> str:
    """A relative path with empty segments removed; LibraryError for a name SharePoint refuses."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    for p in parts:
        if p in (".", "..") or p.strip() != p or p.endswith(".") or _BAD_CHARS & set(p):
            raise LibraryError(f"The file or folder name '{p}' contains characters that are not permitted.")
    return "/".join(parts)


@dataclass
class Library:
    site_key: str  # something unique per site (its Graph id), for the stable ids below
    title: str = "Documents"
    root: str = "Shared Documents"  # web-relative URL of the root folder
    created: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    folders: dict[str, str] = field(default_factory=lambda: {"": ""})  # lower path -> display path
    files: dict[str, LibraryFile] = field(default_factory=dict)  # lower path -> file
    tempauth: dict[str, tuple[str, float]] = field(default_factory=dict)  # download token -> (file id, until)

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.site_key + "/" + self.root))

    @property
    def drive_id(self) -> str:
        """Graph's ``b!``-prefixed drive id (base64url of site and list ids on SharePoint)."""
        raw = uuid.UUID(self.id).bytes + uuid.uuid5(uuid.NAMESPACE_DNS, self.site_key).bytes
        return "b!" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def folder(self, path: str) -> str | None:
        """The display path of an existing folder, or None."""
        return self.folders.get(clean_path(path).lower())

    def ensure_folder(self, path: str) -> str:
        """Create the folder and any missing parents; its display path."""
        clean = clean_path(path)
        if clean.lower() in self.files:
            raise LibraryError(f"A file with the name '{clean}' already exists.")
        done = ""
        for part in clean.split("/") if clean else []:
            nxt = f"{done}/{part}" if done else part
            done = self.folders.setdefault(nxt.lower(), nxt)
        return self.folders[clean.lower()]

    def file(self, path: str) -> LibraryFile | None:
        return self.files.get(clean_path(path).lower())

    def put(self, path: str, content: bytes, now: datetime, *, overwrite: bool = True,
            make_folders: bool = False) -> tuple[LibraryFile, bool]:
        """Store ``content`` at ``path``: (the file, whether it is new). LibraryError if the folder is missing,
        the path is a folder, or the file exists and ``overwrite`` is false."""
        clean = clean_path(path)
        if not clean:
            raise LibraryError("A file name is required.")
        parent, _, name = clean.rpartition("/")
        if make_folders:
            parent = self.ensure_folder(parent)
        elif self.folder(parent) is None:
            raise LibraryError(f"The folder '{parent}' does not exist.")
        key = clean.lower()
        if key in self.folders:
            raise LibraryError(f"A folder with the name '{clean}' already exists.")
        old = self.files.get(key)
        if old is not None and not overwrite:
            raise LibraryError(f"A file with the name '{old.path}' already exists.")
        display = f"{self.folders[parent.lower()]}/{name}" if parent else name
        if old is not None:
            old.content, old.modified, old.version = content, now, old.version + 1
            return old, False
        new = LibraryFile(display, content, now, now)
        self.files[key] = new
        return new, True

    def by_id(self, unique_id: str) -> LibraryFile | None:
        want = unique_id.strip("{}").lower()
        return next((f for f in self.files.values() if f.unique_id == want), None)

    def children(self, folder: str) -> tuple[list[str], list[LibraryFile]]:
        """Direct sub-folders (display paths) and files of ``folder``."""
        base = clean_path(folder).lower()
        prefix = base + "/" if base else ""
        subs = [d for k, d in self.folders.items() if k and k.startswith(prefix) and "/" not in k[len(prefix):]]
        files = [f for k, f in self.files.items() if k.startswith(prefix) and "/" not in k[len(prefix):]]
        return sorted(subs), sorted(files, key=lambda f: f.path.lower())

    def walk(self, folder: str = "") -> list[LibraryFile]:
        """Every file at or below ``folder``, by path."""
        base = clean_path(folder).lower()
        prefix = base + "/" if base else ""
        return sorted((f for k, f in self.files.items() if k.startswith(prefix)), key=lambda f: f.path.lower())
