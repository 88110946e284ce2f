"""The tests' reading of node-dns logs: a timestamp is never mistaken for a refusal."""

from tests.harness.logs import denials

STAMPED = "2026-12-03 17:10:16,403 INFO    node_dns: startup heap frozen for the garbage collector"


def test_a_timestamp_ending_in_403_milliseconds_is_not_a_denial() -> None:
    assert denials(STAMPED) == []


def test_a_403_status_in_the_message_is_a_denial() -> None:
    line = "2026-12-03 17:10:16,209 WARNING node_dns.kube: GET /api/v1/nodes: 403 Forbidden"
    assert denials(f"{STAMPED}\n{line}") == [line]


def test_forbidden_is_a_denial_in_any_case() -> None:
    line = "2026-12-03 17:10:16,209 ERROR   kopf: nodes is forbidden: User cannot list"
    assert denials(line) == [line]


def test_unstamped_lines_are_read_whole() -> None:
    assert denials("HTTP 403 from the apiserver") == ["HTTP 403 from the apiserver"]
