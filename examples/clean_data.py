"""Trustworthy party data: values checked at the door, duplicates refused or found, merged and unmerged.

Run it with ``python examples/clean_data.py``: it works on a SQLite store in a temporary directory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from crmcore import CRM, DuplicateParty, InvalidInput


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crmcore-clean-data-") as tmp:
        tell(f"sqlite:///{Path(tmp) / 'clean_data.db'}")


def tell(store: str) -> None:
    """The story, on ``store``."""
    with CRM(store) as crm:
        mario = crm.register_party(
            kind="person", given_name="Mario", family_name="Rossi", organization_name="ACME S.p.A.",
            emails=["Mario.Rossi@ACME.it"], phones=["02 1234 5678"], birth_date="1980-02-03",
            address={"country": "IT", "street": "Via Roma", "street_number": "1", "postcode": "20121",
                     "locality": "Milano", "province": "MI"},
            actor="marketing:eva",
        )
        party = crm.get_party(mario)
        print(f"registered {party.name}: email {party.primary_email}, phone {party.primary_phone}")

        # Bad values never get in, and the error names the field.
        try:
            crm.register_party(kind="organization", name="Globex", vat_number="IT00743110158", actor="eva")
        except InvalidInput as refused:
            print(f"refused: {refused.errors[0]['loc'][0]} has a wrong checksum")

        # The same e-mail address, typed differently, is the same person.
        try:
            crm.register_party(kind="person", name="M. Rossi", emails=["mario.rossi@acme.IT"], actor="eva")
        except DuplicateParty as refused:
            print(f"refused: {refused.field} {refused.key} already belongs to "
                  f"{crm.get_party(refused.existing_id).name}")

        # A near match is registered, with a warning the caller can act on.
        entered = crm.enter_party(
            kind="person", given_name="Mario", family_name="Rosi", organization_name="Acme SpA",
            emails=["mrossi@gmail.com"], birth_date="1980-02-03", actor="sales:luca",
        )
        for match in entered.near_matches:
            agreeing = ", ".join(r.field for r in match.reasons if r.level in ("exact", "close"))
            print(f"near match for the new party: {crm.get_party(match.other_id).name} "
                  f"(score {match.score:.2f}; agree on {agreeing})")

        # Before an import lands: which rows are already known, or twice in the file?
        rows = [
            {"kind": "person", "given_name": "Giulia", "family_name": "Bianchi", "email": "giulia@ex.it"},
            {"kind": "person", "given_name": "Mario", "family_name": "Rossi", "email": "mario.rossi@acme.it"},
            {"kind": "person", "given_name": "Giulia", "family_name": "Bianchi", "email": "GIULIA@ex.it"},
        ]
        for match in crm.check_import(rows):
            other = match.other_id if isinstance(match.other_id, str) else crm.get_party(match.other_id).name
            first = match.party_id if isinstance(match.party_id, str) else crm.get_party(match.party_id).name
            print(f"import check: {first} ~ {other} (score {match.score:.2f})")

        # Merge the duplicate into the original, looking at the plan first.
        plan = crm.merge(mario, entered.party_id, actor="ops:anna", reason="one person, two sign-ups",
                         dry_run=True)
        taken = [f"{f.field} from {f.source}" for f in plan.fields if f.source != "survivor"]
        print(f"merge plan: {'; '.join(taken)}")
        crm.merge(mario, entered.party_id, actor="ops:anna", reason="one person, two sign-ups")
        print(f"after merge: {crm.get_party(mario).emails}; parties listed: {len(crm.parties())}")

        # It was a different Mario after all: unmerge restores both.
        loser, survivor = crm.unmerge(entered.party_id, actor="ops:anna", reason="a different Mario")
        print(f"after unmerge: {survivor.name} {survivor.emails}, {loser.name} {loser.emails}; "
              f"parties listed: {len(crm.parties())}")
        print("history of the second Mario: " + ", ".join(e.event for e in crm.timeline(loser.id)))


if __name__ == "__main__":
    main()
