"""The node agent's settings: plain declarations (no pydantic) read from flags and NODE_DNS_*
variables exactly as the controller reads its own, and the settings both commands share
defined once."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from node_dns.settings import agent, common, errors, spec
from node_dns.settings.kubernetes import KubernetesSettings
from node_dns.settings.logs import LogSettings
from node_dns.settings.nodes import NodeSettings


def test_without_flags_or_environment_every_setting_is_its_default() -> None:
    loaded = agent.load({}, {})

    for setting in agent.SETTINGS:
        assert getattr(loaded, setting.name) == setting.default, setting.name


def test_an_environment_variable_sets_a_setting_whatever_its_case() -> None:
    loaded = agent.load({}, {"node_dns_agent_max_addresses": "4", "NODE_DNS_LOG_LEVEL": "DEBUG"})

    assert (loaded.agent_max_addresses, loaded.log_level) == (4, "debug")


def test_a_flag_wins_over_the_environment() -> None:
    loaded = agent.load({"agent_http_port": "9481"}, {"NODE_DNS_AGENT_HTTP_PORT": "1"})

    assert loaded.agent_http_port == 9481


def test_lists_split_on_commas_and_spaces_and_keep_each_entry_once() -> None:
    loaded = agent.load(
        {"agent_interfaces": "eth*, ens* eth*", "agent_allowed_networks": "192.168.1.7/24,fd00::/8"}, {}
    )

    assert loaded.agent_interfaces == ("eth*", "ens*")
    assert loaded.agent_allowed_networks == ("192.168.1.0/24", "fd00::/8")


def test_an_invalid_value_names_the_setting() -> None:
    with pytest.raises(errors.SettingError) as caught:
        agent.load({}, {"NODE_DNS_AGENT_REASSERT_INTERVAL": "inf"})

    assert caught.value.name == "agent_reassert_interval"


def test_other_node_dns_variables_are_not_the_agents_business() -> None:
    """The chart gives the agent only its own variables; a controller one set by hand is ignored."""
    loaded = agent.load({}, {"NODE_DNS_ZONE": "x", "NODE_DNS_RECORD_TTL": "bad"})

    assert loaded == agent.load({}, {})


WORDS = ["1", "0", "true", "False", "YES", "no", "on", "Off", "t", "f", "y", "n", "maybe", "2", ""]


@pytest.mark.parametrize("word", WORDS)
def test_a_boolean_word_means_what_it_means_to_the_controller(word: str) -> None:
    try:
        expected: bool | None = TypeAdapter(bool).validate_python(word)
    except ValidationError:
        expected = None
    try:
        ours: bool | None = spec.boolean(word)
    except ValueError:
        ours = None

    assert ours == expected


def test_the_shared_settings_are_the_controllers_own() -> None:
    fields = {
        **KubernetesSettings.model_fields,
        **LogSettings.model_fields,
        "discovered_annotation": NodeSettings.model_fields["discovered_annotation"],
    }
    shared = [common.KUBECONFIG, common.LOG_LEVEL, common.LOG_JSON, common.DISCOVERED_ANNOTATION]

    for setting in shared:
        field = fields[setting.name]
        assert (field.default, field.description) == (setting.default, setting.description)
    assert get_args(LogSettings.model_fields["log_level"].annotation) == common.LOG_LEVELS
    assert (LogSettings.title, KubernetesSettings.title) == (common.LOGGING.title, common.KUBERNETES.title)


@pytest.mark.parametrize("value", ["node-dns/discovered-ips", "example.com/ips", "bad key!", "a/b/c", ""])
def test_the_annotation_key_rule_is_the_controllers(value: str) -> None:
    try:
        NodeSettings(discovered_annotation=value)
        controller = True
    except ValidationError:
        controller = False
    try:
        common.DISCOVERED_ANNOTATION.parse(value)
        ours = True
    except ValueError:
        ours = False

    assert ours == controller
