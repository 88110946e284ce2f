"""Templates: sandboxed, strict about undefined names, errors carry the template line."""

from __future__ import annotations

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


def test_lists_and_dicts_inside_the_context_cannot_be_changed_either() -> None:
    """The render process shares the context's parts between renders: no template may edit them."""
    nodes = [{"name": "a", "labels": {"rack": "r1"}}]
    for text in (
        "{{ nodes.append(1) }}",
        "{{ nodes[0].labels.update({'rack': 'r2'}) }}",
        "{{ nodes.sort() }}",
    ):
        compiled = template.compile_template("a", text)
        with pytest.raises(template.TemplateError):
            compiled.render({"nodes": nodes})
    assert nodes == [{"name": "a", "labels": {"rack": "r1"}}]
