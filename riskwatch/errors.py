"""The one error hierarchy of riskwatch.

Every error the package raises on purpose derives from :class:`RiskwatchError`.
Library errors (paho, urllib3, influxdb-client, sqlite, yaml) are translated at the
boundary with ``raise ... from exc`` so callers only ever catch these::

    RiskwatchError
    ├── ConfigError            one problem in a config/rule/catalogue file (file, line, key path)
    │   └── ConfigErrors       all problems of one file, reported in one pass
    ├── DecodeError            one unusable reading or message (dead-letter reason, payload field)
    ├── StorageError           a write failed (``retryable`` says whether trying again can help)
    ├── SpoolFullError         the on-disk spool reached its bound
    ├── SnapshotError          a state snapshot or journal is unreadable (file, why):
    │                          logged and ignored at start, never fatal
    ├── StateError             an illegal state-machine move (alerts, operator actions)
    │   └── IllegalTransition  an alert refused a move: state, event and why (HTTP 409;
    │                          riskwatch.alerts.state, next to the states it names)
    ├── AlertNotFound          no alert (or silence) with that id (HTTP 404)
    ├── NotOwned               the alert is open in another engine instance (HTTP 409)
    ├── AlertStoreError        the alert store failed: database and operation (HTTP 503)
    ├── NotifyError            a notification was not sent (``retryable`` says whether
    │                          trying again can help)
    └── AlertApiError          the ``riskwatch alerts`` CLI got no usable answer from the API

Dead-letter reasons are a :class:`DeadLetterReason` ``StrEnum`` so they can be used as
bounded Prometheus label values.

>>> err = ConfigError("mqtt.qos", "must be 0, 1 or 2, got 3", file="engine.yaml", line=14, col=5)
>>> str(err)
'engine.yaml:14:5: mqtt.qos: must be 0, 1 or 2, got 3'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

__all__ = [
    "AlertApiError",
    "AlertNotFound",
    "AlertStoreError",
    "ConfigError",
    "ConfigErrors",
    "DeadLetterReason",
    "DecodeError",
    "NotOwned",
    "NotifyError",
    "RiskwatchError",
    "SnapshotError",
    "SpoolFullError",
    "StateError",
    "StorageError",
]


class RiskwatchError(Exception):
    """Base of every error riskwatch raises on purpose."""


class ConfigError(RiskwatchError):
    """One problem in a YAML/CSV file, located by file, line, column and key path."""

    def __init__(
        self,
        key_path: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        self.key_path = key_path
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        key = f"{self.key_path}: " if self.key_path else ""
        return f"{where}: {key}{self.message}"


class ConfigErrors(RiskwatchError):
    """All problems found in one pass over one or more files."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    @classmethod
    def raise_if(cls, errors: Iterable[ConfigError]) -> None:
        errs = list(errors)
        if errs:
            raise cls(errs)


class DeadLetterReason(StrEnum):
    """Why a reading or a message went to the dead-letter sink (bounded label set)."""

    INVALID_JSON = "invalid_json"
    BAD_SHAPE = "bad_shape"
    MISSING_VALUE = "missing_value"
    NON_NUMERIC_VALUE = "non_numeric_value"
    NON_FINITE_VALUE = "non_finite_value"
    MISSING_SENSOR = "missing_sensor"
    BAD_TIMESTAMP = "bad_timestamp"
    ABSURD_TIMESTAMP = "absurd_timestamp"
    UNKNOWN_SENSOR = "unknown_sensor"
    TOPIC_MISMATCH = "topic_mismatch"
    TOO_LARGE = "too_large"
    BAD_QUALITY = "bad_quality"
    STORAGE_REJECTED = "storage_rejected"
    TOO_DEEP = "too_deep"  # JSON nested deeper than any reading form needs
    NUMBER_OUT_OF_RANGE = "number_out_of_range"  # an integer no float64 can hold
    BAD_TEXT = "bad_text"  # a string that is not valid UTF-8 (a lone surrogate)
    SENSOR_LIMIT = "sensor_limit"  # a new sensor over the per-enterprise or per-minute limit
    DECODE_ERROR = "decode_error"  # the decoder failed on this message (a bug): kept, not lost
    # the ingest adapters (docs/ingest.md)
    BAD_FILE_NAME = "bad_file_name"  # a KJ file whose name is not <mine>_<TYPE>_<time>.txt
    BAD_ENCODING = "bad_encoding"  # a file that is neither UTF-8 nor GB18030 text
    FIELD_COUNT = "field_count"  # a KJ record with too few fields for its type
    BAD_FIELD = "bad_field"  # a KJ field that does not parse (number, time, state)
    BAD_PROTOBUF = "bad_protobuf"  # a Sparkplug payload that is not a Sparkplug B Payload
    UNKNOWN_ALIAS = "unknown_alias"  # Sparkplug DATA by an alias (or name) no BIRTH declared
    UNSUPPORTED_TYPE = "unsupported_type"  # a Sparkplug metric that is not a number/boolean
    BAD_TOPIC = "bad_topic"  # a Sparkplug topic that is not spBv1.0/<group>/<type>/<node>[/dev]
    DECRYPT_FAILED = "decrypt_failed"  # an HTTP envelope whose data field did not decrypt


class DecodeError(RiskwatchError):
    """A payload (or one reading of it) that cannot be used."""

    def __init__(self, reason: DeadLetterReason, detail: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        super().__init__(f"{reason}: {detail}" + (f" (field {field!r})" if field else ""))


class StorageError(RiskwatchError):
    """A write to the time-series database failed.

    ``retryable`` is True for outages and 5xx answers (spool and retry), False for a
    4xx answer (the data itself is bad: dead-letter it, retrying cannot help).
    """

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None,
        dropped: int | None = None,
    ) -> None:  # fmt: skip
        self.retryable = retryable
        self.status = status
        #: a partial write: the database kept the other points and dropped this many
        self.dropped = dropped
        super().__init__(message)


class SpoolFullError(RiskwatchError):
    """The on-disk spool reached ``storage.spool_max_bytes``; ingest must slow down."""


class SnapshotError(RiskwatchError):
    """A state snapshot or journal file is unreadable: wrong format, version, truncated."""

    def __init__(self, file: str, why: str) -> None:
        super().__init__(f"{file}: {why}")
        self.file = file
        self.why = why


class StateError(RiskwatchError):
    """An illegal state-machine transition was requested."""


class AlertNotFound(RiskwatchError):
    """No alert (or silence) with that id (HTTP 404)."""


class NotOwned(RiskwatchError):
    """The alert is open in another engine instance sharing the database (HTTP 409)."""


class AlertStoreError(RiskwatchError):
    """The alert store failed (the message names the database and the operation)."""


class NotifyError(RiskwatchError):
    """Sending a notification failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        self.retryable = retryable
        super().__init__(message)


class AlertApiError(RiskwatchError):
    """The alert API refused a CLI call or could not be reached."""
