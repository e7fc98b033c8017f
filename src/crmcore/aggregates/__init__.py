"""Event-sourced aggregates, one module each, with their events nested inside."""

from crmcore.aggregates.catalog import FieldCatalog
from crmcore.aggregates.party import Party

__all__ = ["FieldCatalog", "Party"]
