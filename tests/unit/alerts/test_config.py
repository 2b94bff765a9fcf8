"""The alerts config: the shipped sample parses, defaults work with no config, and broken
entries are reported with file:line: key."""

from __future__ import annotations

from importlib import resources

import pytest

from riskwatch.config.engine import load_engine_config_text
from riskwatch.errors import ConfigErrors


def test_sample_parses() -> None:
    text = (resources.files("riskwatch") / "config" / "alerts_sample.yaml").read_text()
    cfg = load_engine_config_text(text, file="alerts_sample.yaml").alerts
    assert [n.label for n in cfg.notifiers()] == ["mqtt", "dispatch", "shift-lead", "dingtalk",
                                                 "log"]
    assert cfg.escalate_after_s == {"red": 300, "orange": 900, "yellow": 3600}
    assert cfg.inhibit[1].lower_only and cfg.api.listen == "127.0.0.1:9110"


def test_defaults_without_config() -> None:
    cfg = load_engine_config_text("{}").alerts
    (n,) = cfg.notifiers()
    assert (cfg.store, n.kind, n.topic, cfg.write) == (
        "var/alerts.sqlite", "mqtt", "rw-alerts/{enterprise}", "async")  # fmt: skip


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("alerts: {notify: [{kind: sms}]}",
         "e.yaml:1:26: alerts.notify[0].kind: must be one of 'mqtt', 'webhook', 'log', "
         "'dingtalk', 'wecom', 'email', got 'sms'"),
        ("alerts: {notify: [{kind: webhook}]}",
         "e.yaml:1:19: alerts.notify[0].url: a webhook notifier needs url: http(s)://..."),
        ("alerts: {notify: [{kind: webhook, url: 'http://h/', format: prom}]}",
         "e.yaml:1:61: alerts.notify[0].format: must be one of 'riskwatch', 'alertmanager', "
         "got 'prom'"),
        ("alerts: {notify: [{kind: dingtalk}]}",
         "e.yaml:1:19: alerts.notify[0].token_env: a dingtalk robot needs its access_token: "
         "set token_env or token_file"),
        ("alerts: {notify: [{kind: wecom, token_env: K, timezone: Mars/Olympus}]}",
         "e.yaml:1:57: alerts.notify[0].timezone: unknown time zone 'Mars/Olympus' (use an "
         "IANA name such as Asia/Shanghai)"),
        ("alerts: {notify: [{kind: wecom, token_env: K, title_template: '{lvl} alarm'}]}",
         "e.yaml:1:63: alerts.notify[0].title_template: unknown placeholder {lvl}; known: "
         "action, by, enterprise, group, id, level, message, note, rule, sensor, site, state, "
         "threshold, tier, time, value, what, where"),
        ("alerts: {notify: [{kind: email, smtp_host: h, from_addr: a@b}]}",
         "e.yaml:1:19: alerts.notify[0].to: an email notifier needs at least one address in to"),
        ("alerts: {inhibit: [{source: {colour: red}}]}",
         "e.yaml:1:29: alerts.inhibit[0].source: unknown matcher key 'colour' (known: "
         "enterprise, site, sensor, group, rule, level, kind, source)"),
        ("alerts: {flapping: {high: 2, low: 3}}",
         "e.yaml:1:35: alerts.flapping.low: must be >= 0 and < high"),
        ("alerts: {api: {tokens: [{name: x}]}}",
         "e.yaml:1:25: alerts.api.tokens[0].token_env: set token_env or token_file"),
        ("alerts: {write: later}",
         "e.yaml:1:17: alerts.write: must be one of 'async', 'sync', got 'later'"),
    ],
)  # fmt: skip
def test_errors_name_file_line_key(yaml: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as ei:
        load_engine_config_text(yaml + "\n", file="e.yaml")
    assert str(ei.value) == message
