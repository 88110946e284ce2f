"""Transfer settings that need a file: a bad key file stops the start with one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ["--zone=lb.example.net", "--nameservers=ns.example.org", "--soa-email=h@example.net"]
SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def start(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node_dns", "serve", *BASE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "No such file or directory"),
        ('key "xfr" { algorithm hmac-sha256; };', "needs both 'algorithm' and 'secret'"),
        ('key "xfr" { algorithm hmac-sha256; secret "%%%"; };', "not valid base64"),
        ("options { };", "no `key"),
    ],
)
def test_a_bad_keys_file_is_one_line_naming_the_setting(tmp_path: Path, text: str | None, says: str) -> None:
    path = tmp_path / "keys.conf"
    if text is not None:
        path.write_text(text)

    result = start(f"--tsig-keys-file={path}")

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--tsig-keys-file" in result.stderr and says in result.stderr
    assert SECRET not in result.stderr


def test_a_key_named_by_transfer_allow_must_be_defined() -> None:
    result = start(f"--tsig-key=xfr:{SECRET}", "--transfer-allow=key=other")

    assert result.returncode == 2
    assert "--transfer-allow" in result.stderr and "'other' is not defined" in result.stderr


def test_a_key_in_both_places_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.conf"
    path.write_text(f'key "xfr" {{ algorithm hmac-sha256; secret "{SECRET}"; }};')

    result = start(f"--tsig-key=xfr:{SECRET}", f"--tsig-keys-file={path}")

    assert result.returncode == 2 and "'xfr' is also in --tsig-key" in result.stderr
