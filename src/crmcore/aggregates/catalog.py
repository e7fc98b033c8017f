"""The ``FieldCatalog`` aggregate: an installation's custom-field and profile-trait definitions, versioned.

One catalog per store, with a fixed id. Each change to the definitions is an event, so the catalog's
``version`` names a set of rules: reading the catalog at version *n* gives the rules in force then, and each
party value records the version it was written under. Definitions are stored as JSON-native dicts
(``FieldDefinition.model_dump(mode="json")``) and read back with ``FieldDefinition.model_validate``.

Rules of the catalog:

- a name is defined once: defining it again, even after it was retired, raises :class:`FieldAlreadyDefined`
  (names are never reused, so a value written under a retired field is still read against its definition);
- a field's ``kind`` and ``section`` never change: a value written under one kind has another shape than a
  value of another kind (``"x"`` against ``["x"]``, ``"1.5"`` against ``true``); to change either, retire
  the field and define a new one;
- changing or retiring a name that is not an active field raises :class:`FieldNotDefined`;
- a change that leaves the definition as it was records nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from crmcore.aggregates.party import _check_not_future
from crmcore.exceptions import FieldAlreadyDefined, FieldNotDefined, InvalidInput
from crmcore.fields import FieldDefinition, FieldSet
from crmcore.values import utc_now

__all__ = ["CATALOG_ID", "NAMESPACE", "FieldCatalog"]

#: The namespace of crmcore's deterministic ids.
NAMESPACE = uuid5(NAMESPACE_URL, "https://crmcore/ids")

#: The id of the one field catalog of a store.
CATALOG_ID = uuid5(NAMESPACE, "crmcore:field-catalog")


class FieldCatalog(Aggregate):
    """The definitions of an installation's custom fields and profile traits; its version is the catalog's."""

    class Event(Aggregate.Event):
        """Every catalog event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Started(Event, Aggregate.Created):
        """The catalog exists, with no fields yet (version 1)."""

    class FieldDefined(Event):
        definition: dict[str, Any]

    class FieldRulesChanged(Event):
        name: str
        definition: dict[str, Any]

    class FieldRetired(Event):
        name: str
        reason: str

    # ------------------------------------------------------------------ creation

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """Always :data:`CATALOG_ID`: a store has one catalog, and two writers starting it collide."""
        return CATALOG_ID

    @event(Started)
    def __init__(self, *, actor: str, effective_at: datetime) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.retired: dict[str, str] = {}

    @classmethod
    def start(cls, *, actor: str, effective_at: datetime | None = None) -> FieldCatalog:
        """A new, empty catalog (saved together with its first definition)."""
        return cls(actor=actor, effective_at=_check_not_future(effective_at or utc_now()))

    # ------------------------------------------------------------------ commands

    def define(
        self, definition: FieldDefinition, *, actor: str, effective_at: datetime | None = None,
    ) -> None:
        """Add a field; its name must never have been used."""
        at = _check_not_future(effective_at or utc_now())
        if definition.name in self.definitions:
            raise FieldAlreadyDefined(definition.name)
        if definition.name in self.retired:
            raise FieldAlreadyDefined(definition.name, "it was retired, and names are never reused")
        self._field_defined(definition=_stored(definition), actor=actor, effective_at=at)

    def change_rules(
        self, definition: FieldDefinition, *, actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Replace an active field's rules (same kind and section). Returns False if nothing changed."""
        at = _check_not_future(effective_at or utc_now())
        current = self.definition(definition.name)
        for rule in ("kind", "section"):
            old, new = getattr(current, rule), getattr(definition, rule)
            if old != new:
                message = (f"{definition.name}: the {rule} of a field never changes ({old} → {new}); "
                           "retire it and define a new field")
                raise InvalidInput(message, [{"loc": (rule,), "msg": message, "type": f"{rule}_change"}])
        stored = _stored(definition)
        if stored == self.definitions[definition.name]:
            return False
        self._field_rules_changed(name=definition.name, definition=stored, actor=actor, effective_at=at)
        return True

    def retire(self, name: str, *, reason: str, actor: str, effective_at: datetime | None = None) -> None:
        """Retire an active field: no new values; values already written stay, readable as they were."""
        at = _check_not_future(effective_at or utc_now())
        self.definition(name)
        self._field_retired(name=name, reason=reason, actor=actor, effective_at=at)

    # ------------------------------------------------------------------ reading

    def definition(self, name: str) -> FieldDefinition:
        """The active definition of ``name``; raises :class:`FieldNotDefined` if there is none."""
        stored = self.definitions.get(name)
        if stored is None:
            detail = "it was retired" if name in self.retired else ""
            raise FieldNotDefined(name, detail)
        return FieldDefinition.model_validate(stored)

    def fields(self) -> FieldSet:
        """The active definitions, in the order they were defined, at this catalog version."""
        return FieldSet((FieldDefinition.model_validate(d) for d in self.definitions.values()),
                        version=self.version)

    # ------------------------------------------------------------------ mutators (never raise)

    @event(FieldDefined)
    def _field_defined(self, definition: dict[str, Any], actor: str, effective_at: datetime) -> None:
        self.definitions[definition["name"]] = definition

    @event(FieldRulesChanged)
    def _field_rules_changed(
        self, name: str, definition: dict[str, Any], actor: str, effective_at: datetime,
    ) -> None:
        self.definitions[name] = definition

    @event(FieldRetired)
    def _field_retired(self, name: str, reason: str, actor: str, effective_at: datetime) -> None:
        self.definitions.pop(name, None)
        self.retired[name] = reason


def _stored(definition: FieldDefinition) -> dict[str, Any]:
    """The JSON-native form a definition is stored in (and read back from unchanged)."""
    return definition.model_dump(mode="json")
