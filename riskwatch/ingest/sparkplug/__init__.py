"""Sparkplug B (ISO/IEC 20237) ingest: the engine as a primary host application.

- :mod:`.payloads`: the protobuf ``Payload`` (generated from ``sparkplug_b.proto``, the
  specification's schema) and builders for the messages the engine and test edge nodes send;
- :mod:`.host`: per edge node session state (BIRTH aliases, ``seq``, ``bdSeq``) and the
  decoder that turns NBIRTH/NDATA/DBIRTH/DDATA into readings, NDEATH/DDEATH into the
  ``sparkplug_offline`` health signal, and a ``seq`` gap into a rebirth request.
"""

from riskwatch.ingest.sparkplug.host import SparkplugDecoder, SparkplugTopic, parse_topic
from riskwatch.ingest.sparkplug.payloads import (
    Payload,
    rebirth_request,
    state_payload,
)

__all__ = [
    "Payload",
    "SparkplugDecoder",
    "SparkplugTopic",
    "parse_topic",
    "rebirth_request",
    "state_payload",
]
