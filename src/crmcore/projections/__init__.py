"""Read models: pure folds over events, and the runner that persists them and tracks their position."""

from crmcore.projections.base import Row, View, fold, matches
from crmcore.projections.consent import MailingExclusionsView
from crmcore.projections.parties import PartiesView
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
    "Row",
    "SQLiteViewStorage",
    "View",
    "ViewRunner",
    "ViewStorage",
    "ViewVersionConflict",
    "fold",
    "matches",
    "read_events",
]
