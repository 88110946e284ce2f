"""Output files: replaced atomically, mode kept, nothing left behind when a write fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from node_dns.sinks.hooks import files


def test_a_new_file_is_readable_by_other_users(tmp_path: Path) -> None:
    out = tmp_path / "backends.lua"
    files.write_atomic(out, b"one\n")
    assert out.read_bytes() == b"one\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_a_replaced_file_keeps_its_mode_and_gets_a_new_inode(tmp_path: Path) -> None:
    out = tmp_path / "haproxy.cfg"
    out.write_bytes(b"old\n")
    out.chmod(0o640)
    inode = out.stat().st_ino
    files.write_atomic(out, b"new\n")
    assert out.read_bytes() == b"new\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.stat().st_ino != inode  # renamed over, never rewritten in place


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_replaced_file_keeps_its_owner(tmp_path: Path) -> None:
    out = tmp_path / "nginx.conf"
    out.write_bytes(b"old\n")
    os.chown(out, 65534, 65534)
    assert files.write_atomic(out, b"new\n") is False
    assert (out.stat().st_uid, out.stat().st_gid) == (65534, 65534)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "a.conf"
    out.write_bytes(b"good\n")
    (tmp_path / "sub").mkdir()
    with pytest.raises(OSError):
        files.write_atomic(tmp_path / "sub", b"x")  # a directory cannot be replaced by a file
    assert out.read_bytes() == b"good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conf", "sub"]


def test_digest_of_the_file_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "a"
    assert files.current_digest(out) is None
    out.write_bytes(b"x")
    assert files.current_digest(out) == files.digest(b"x")


def test_check_directory_says_what_is_wrong(tmp_path: Path) -> None:
    assert files.check_directory(tmp_path / "a") is None
    assert (
        files.check_directory(tmp_path / "none" / "a")
        == f"output directory {tmp_path / 'none'} does not exist"
    )
    assert files.check_directory(tmp_path) == f"output {tmp_path} is a directory"
