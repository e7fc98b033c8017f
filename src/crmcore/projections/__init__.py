"""Read models: pure folds over events (or over stored records, for speed), and the runner that persists
them and tracks their position."""

from crmcore.projections.base import RecordView, Row, View, fold, fold_records, matches
from crmcore.projections.consent import MailingExclusionsView
from crmcore.projections.parties import PartiesView
from crmcore.projections.records import RecordReader, StoredRecord, record_of
from crmcore.projections.runner import ViewRunner, read_events
from crmcore.projections.storage import (
    MemoryViewStorage,
    PostgresViewStorage,
    SQLiteViewStorage,
    ViewStorage,
    ViewVersionConflict,
)

__all__ = [
    "MailingExclusionsView",
    "MemoryViewStorage",
    "PartiesView",
    "PostgresViewStorage",
    "RecordReader",
    "RecordView",
    "Row",
    "SQLiteViewStorage",
    "StoredRecord",
    "View",
    "ViewRunner",
    "ViewStorage",
    "ViewVersionConflict",
    "fold",
    "fold_records",
    "matches",
    "read_events",
    "record_of",
]
