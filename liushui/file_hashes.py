"""SHA-256 of inbox files, remembered between runs by what the file system says of each file.

A file's content hash is how a run knows a file it read before: a renamed file is known, a changed file is new.
Hashing reads every byte — the 50 M-row benchmark inbox is 3.4 GB, 2.4–5 s on every night, even a night with
nothing new. `FileHashes` remembers each file's hash with its stat — absolute path, device, inode, size,
modification and status-change times in nanoseconds — and hashes again only a file whose stat differs, as git's
index and rsync's quick check do. A write changes the modification and the status-change time, and the
status-change time cannot be set back by `touch`: a file rewritten with the same size and a forged mtime is still
hashed again.

A file modified within `SETTLE_NS` of being hashed is not remembered (git's "racily clean" entries): a write in the
same clock tick as the hash could leave the stat unchanged. A cache file that cannot be read is an empty cache,
and one that cannot be written is not written (a read-only folder): the hash is then computed, never guessed.
The cache keeps the files of the last inbox it was asked about, so it does not grow with the nights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

SETTLE_NS = 2_000_000_000
"""A file whose last change is younger than this when hashed is hashed again next time."""

_VERSION = 1


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file's bytes."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class FileHashes:
    """The remembered hashes of one database's inbox files (`Settings.file_hashes_path`); `sha256(path)` answers
    from memory when the file's stat is the one remembered, else hashes the file. `save()` writes what this run
    saw (atomically); `hashed` counts the files actually read."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.hashed = 0
        self._known: dict[str, tuple[list[int], str]] = {}
        self._seen: dict[str, tuple[list[int], str]] = {}
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["version"] == _VERSION:
                self._known = {
                    str(name): ([int(x) for x in entry["stat"]], str(entry["sha256"]))
                    for name, entry in data["files"].items()
                    if len(entry["stat"]) == 5 and len(str(entry["sha256"])) == 64
                }

    def sha256(self, path: Path) -> str:
        name = str(path.resolve())
        key = _stat_key(path)
        remembered = self._known.get(name)
        if remembered is not None and remembered[0] == key:
            self._seen[name] = remembered
            return remembered[1]
        sha = file_sha256(path)
        self.hashed += 1
        settled = time.time_ns() - max(key[3], key[4]) > SETTLE_NS
        if settled and _stat_key(path) == key:  # unchanged while it was read
            self._seen[name] = (key, sha)
        return sha

    def save(self) -> None:
        """Remember the files hashed or recognised since loading (the others are forgotten); never fails."""
        if self.path is None:
            return
        files = {name: {"stat": stat, "sha256": sha} for name, (stat, sha) in sorted(self._seen.items())}
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            partial.write_text(json.dumps({"version": _VERSION, "files": files}), encoding="utf-8")
            os.replace(partial, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()
