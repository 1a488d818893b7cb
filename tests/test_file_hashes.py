"""The inbox files' remembered SHA-256 (liushui/file_hashes.py): a file is read again exactly when its stat says
it may have changed, and the hash given is always the file's."""

from __future__ import annotations

import hashlib
import json
import os
import time

from liushui.file_hashes import SETTLE_NS, FileHashes, file_sha256

OLD_NS = time.time_ns() - 10 * SETTLE_NS  # long settled


def _settled(path, content: bytes, mtime_ns: int = OLD_NS) -> str:
    path.write_bytes(content)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return hashlib.sha256(content).hexdigest()


def _wait_settled() -> None:
    """ctime is the time of the last write and cannot be set back: wait until it is settled."""
    time.sleep(SETTLE_NS / 1e9 + 0.1)


def test_a_file_unchanged_since_the_last_run_is_not_read_again(tmp_path):
    f = tmp_path / "night.csv"
    sha = _settled(f, b"a,b\n1,2\n")
    _wait_settled()
    first = FileHashes(tmp_path / "hashes.json")
    assert (first.sha256(f), first.hashed) == (sha, 1)
    first.save()
    second = FileHashes(tmp_path / "hashes.json")
    assert (second.sha256(f), second.hashed) == (sha, 0)


def test_a_file_rewritten_with_the_same_size_and_mtime_is_read_again(tmp_path):
    # a forged mtime (touch -d) cannot forge the status-change time: the new content is hashed
    f = tmp_path / "night.csv"
    _settled(f, b"amount\n100\n")
    _wait_settled()
    cache = FileHashes(tmp_path / "hashes.json")
    cache.sha256(f)
    cache.save()
    time.sleep(0.05)
    changed = _settled(f, b"amount\n900\n")  # same size, mtime set back to the same value
    again = FileHashes(tmp_path / "hashes.json")
    assert (again.sha256(f), again.hashed) == (changed, 1)


def test_a_file_changed_just_before_it_was_hashed_is_not_remembered(tmp_path):
    f = tmp_path / "night.csv"
    f.write_bytes(b"x\n1\n")  # modified now: within the settle time
    cache = FileHashes(tmp_path / "hashes.json")
    cache.sha256(f)
    cache.save()
    again = FileHashes(tmp_path / "hashes.json")
    assert (again.sha256(f), again.hashed) == (file_sha256(f), 1)


def test_a_renamed_file_is_hashed_under_its_new_name_and_keeps_its_hash(tmp_path):
    f = tmp_path / "a.csv"
    sha = _settled(f, b"k\n7\n")
    _wait_settled()
    cache = FileHashes(tmp_path / "hashes.json")
    cache.sha256(f)
    cache.save()
    moved = f.rename(tmp_path / "b.csv")
    again = FileHashes(tmp_path / "hashes.json")
    assert (again.sha256(moved), again.hashed) == (sha, 1)


def test_the_cache_keeps_only_the_files_of_the_last_run(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _settled(a, b"1\n")
    _settled(b, b"2\n")
    _wait_settled()
    cache = FileHashes(tmp_path / "hashes.json")
    cache.sha256(a)
    cache.sha256(b)
    cache.save()
    only_a = FileHashes(tmp_path / "hashes.json")
    only_a.sha256(a)
    only_a.save()
    files = json.loads((tmp_path / "hashes.json").read_text(encoding="utf-8"))["files"]
    assert list(files) == [str(a.resolve())]


def test_a_broken_cache_file_is_an_empty_cache(tmp_path):
    f = tmp_path / "night.csv"
    sha = _settled(f, b"z\n")
    for broken in ("{not json", json.dumps({"version": 1, "files": {str(f.resolve()): {"stat": [1], "sha256": "x"}}})):
        (tmp_path / "hashes.json").write_text(broken, encoding="utf-8")
        cache = FileHashes(tmp_path / "hashes.json")
        assert (cache.sha256(f), cache.hashed) == (sha, 1)


def test_a_remembered_hash_is_not_taken_for_a_file_whose_stat_differs(tmp_path):
    # the entry says another hash for this path, with a stat the file no longer has
    f = tmp_path / "night.csv"
    sha = _settled(f, b"real\n")
    st = f.stat()
    entry = {"stat": [st.st_dev, st.st_ino, st.st_size + 1, st.st_mtime_ns, st.st_ctime_ns], "sha256": "0" * 64}
    (tmp_path / "hashes.json").write_text(json.dumps({"version": 1, "files": {str(f.resolve()): entry}}))
    assert FileHashes(tmp_path / "hashes.json").sha256(f) == sha


def test_a_cache_that_cannot_be_written_is_not_an_error(tmp_path):
    f = tmp_path / "night.csv"
    sha = _settled(f, b"q\n")
    cache = FileHashes(tmp_path / "no such folder" / "hashes.json")
    assert cache.sha256(f) == sha
    cache.save()
    assert not (tmp_path / "no such folder").exists()
    FileHashes(None).save()  # no cache at all: nothing written
