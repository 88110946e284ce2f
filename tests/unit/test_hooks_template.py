"""Templates: sandboxed, strict about undefined names, errors carry the template line."""

from __future__ import annotations

import asyncio

import pytest

from node_dns.sinks.hooks import template


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(template.TemplateError) as caught:
        template.compile_template("a", "one\n{% for a in areas %}\n{{ a }\n{% endfor %}\n")
    assert caught.value.line == 3
    assert str(caught.value).startswith("template line 3: ")


def test_an_undefined_name_fails_the_render_with_its_line() -> None:
    compiled = template.compile_template("a", "zone {{ zone }}\nhome {{ areas.home.ips }}\n")
    with pytest.raises(template.TemplateError) as caught:
        compiled.render({"zone": "z", "areas": {}})
    assert caught.value.line == 2
    assert "undefined" in str(caught.value)


def test_the_sandbox_refuses_python_internals() -> None:
    compiled = template.compile_template("a", "{{ zone.__class__.__mro__ }}")
    with pytest.raises(template.TemplateError, match="unsafe"):
        compiled.render({"zone": "z"})


def test_the_context_cannot_be_changed_by_a_template() -> None:
    compiled = template.compile_template("a", "{{ areas.pop('home') }}")
    with pytest.raises(template.TemplateError):
        compiled.render({"areas": {"home": {}}})


def test_block_lines_leave_no_blank_lines_and_the_last_newline_is_kept() -> None:
    compiled = template.compile_template("a", "{% for ip in ips %}\n  server {{ ip }}\n{% endfor %}\n")
    assert compiled.render({"ips": ["192.0.2.1", "192.0.2.2"]}) == b"  server 192.0.2.1\n  server 192.0.2.2\n"


def test_include_reads_nothing_from_disk() -> None:
    compiled = template.compile_template("a", "{% include '/etc/passwd' %}")
    with pytest.raises(template.TemplateError):
        compiled.render({})


async def test_a_sliced_render_gives_the_event_loop_turns_and_the_same_bytes() -> None:
    compiled = template.compile_template("a", "{% for i in items %}\nline {{ i }}\n{% endfor %}\n")
    context = {"items": list(range(2000))}
    turns = 0
    rendering = True

    async def other_work() -> None:
        nonlocal turns
        while rendering:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(other_work())
    await asyncio.sleep(0)
    before = turns
    data = await compiled.render_sliced(context, slice_seconds=0.0)
    rendering = False
    await ticker
    assert data == compiled.render(context)
    assert turns - before > 100  # the loop ran other work between the slices


async def test_a_sliced_render_reports_errors_with_their_line() -> None:
    compiled = template.compile_template("a", "ok\n{{ missing.key }}\n")
    with pytest.raises(template.TemplateError, match="template line 2: undefined"):
        await compiled.render_sliced({"missing": {}})


def test_the_render_slice_is_the_2_ms_the_readme_states() -> None:
    assert template.SLICE == 0.002
