"""Identity values validate on construction, keep what was given and expose a key for matching."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from stdnum import luhn

from crmcore.exceptions import InvalidInput
from crmcore.identity import (
    COUNTRY_CODES,
    BirthDate,
    EmailAddress,
    OrganizationName,
    PersonName,
    PhoneNumber,
    PostalAddress,
    VatNumber,
    WebLink,
    parse_identity,
)
from crmcore.values import utc_now


def _partita_iva(first_ten: str) -> str:
    """A partita IVA with its check digit computed (Luhn), not remembered."""
    return first_ten + luhn.calc_check_digit(first_ten)


def _spoiled(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# -- EmailAddress ---------------------------------------------------------------------------------------


def test_an_email_address_keeps_its_local_part_and_lower_cases_its_domain() -> None:
    email = EmailAddress.parse("Mario.Rossi@Example.COM")
    assert email.address == "Mario.Rossi@example.com"


def test_email_addresses_differing_only_in_case_share_a_key() -> None:
    assert (
        EmailAddress.parse("Mario.Rossi@Example.COM").key == EmailAddress.parse("mario.rossi@example.com").key
    )


def test_an_internationalised_domain_is_keyed_in_ascii() -> None:
    assert EmailAddress.parse("info@Caffè.it").key == "info@xn--caff-8oa.it"


@pytest.mark.parametrize("text", ["", "mario", "mario@", "@example.com", "ma rio@example.com", "a@b@c.it"])
def test_a_malformed_email_address_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        EmailAddress.parse(text, field="email")
    assert refused.value.errors[0]["loc"][0] == "email"


def test_building_an_email_address_directly_with_bad_input_raises_a_value_error() -> None:
    with pytest.raises(ValueError, match="@-sign"):
        EmailAddress(address="not an address")


# -- PhoneNumber ----------------------------------------------------------------------------------------


def test_an_italian_landline_with_country_code_is_stored_in_e164() -> None:
    assert PhoneNumber.parse("+39 06 1234 5678").e164 == "+390612345678"


def test_an_italian_mobile_without_country_code_is_read_in_the_default_region() -> None:
    phone = PhoneNumber.parse("333 123 4567")
    assert phone.e164 == "+393331234567"
    assert phone.key == "+393331234567"


def test_a_number_without_country_code_is_read_in_the_region_given() -> None:
    assert PhoneNumber.parse("020 7946 0018", region="GB").e164 == "+442079460018"


def test_a_phone_number_is_displayed_in_international_form() -> None:
    assert PhoneNumber.parse("06 1234 5678").international == "+39 06 1234 5678"


@pytest.mark.parametrize("text", ["", "123", "abc", "+39 12", "+999 1234 5678"])
def test_an_invalid_phone_number_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        PhoneNumber.parse(text, field="phone")
    assert refused.value.errors[0]["loc"][0] == "phone"


# -- PersonName -----------------------------------------------------------------------------------------


def test_a_person_name_is_stripped_with_whitespace_collapsed() -> None:
    name = PersonName(given_name="  Maria   Grazia ", family_name=" Rossi ")
    assert (name.given_name, name.family_name) == ("Maria Grazia", "Rossi")
    assert name.display == "Maria Grazia Rossi"


def test_a_person_name_key_is_family_then_given_case_folded_without_accents() -> None:
    assert PersonName(given_name="Nicolò", family_name="Dell'Òrto").key == "dellorto nicolo"
    assert PersonName(given_name="NICOLO", family_name="dellorto").key == "dellorto nicolo"


@pytest.mark.parametrize(
    ("given", "family"),
    [("", "Rossi"), ("   ", "Rossi"), ("Mario", "x" * 101), ("Ma\x00rio", "Rossi"), ("Mario", "Ros\nsi")],
)
def test_a_blank_overlong_or_control_character_name_is_refused(given: str, family: str) -> None:
    with pytest.raises(InvalidInput):
        PersonName.parse({"given_name": given, "family_name": family})


# -- OrganizationName -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ACME S.p.A.", "acme spa"),
        ("ACME SpA", "Acme S.P.A"),
        ("Rossi S.r.l.", "ROSSI SRL"),
        ("Bianchi & C. S.n.c.", "bianchi c snc"),
        ("Verdi S.a.s.", "verdi sas"),
        ("Widget Limited", "Widget Ltd."),
        ("Müller GmbH", "Muller G.m.b.H."),
        ("Acme, Inc.", "ACME Incorporated"),
        ("Acme L.L.C.", "acme llc"),
        ("Café Société S.A.", "cafe societe sa"),
        ("Holland B.V.", "holland bv"),
        ("Siemens AG", "siemens a.g."),
    ],
)
def test_organisation_names_differing_in_case_accents_punctuation_or_legal_form_spelling_share_a_key(
    one: str, other: str
) -> None:
    assert OrganizationName.parse(one).key == OrganizationName.parse(other).key


def test_an_organisation_name_is_kept_as_given_for_display() -> None:
    assert OrganizationName.parse("ACME S.p.A.").name == "ACME S.p.A."


def test_a_legal_form_is_folded_only_at_the_end_of_the_name() -> None:
    assert OrganizationName.parse("Limited Editions S.r.l.").key == "limited editions srl"
    assert OrganizationName.parse("S A Rossi").key == "s a rossi"


@pytest.mark.parametrize("text", ["", "   ", "...", "x" * 201, "Acme\x07"])
def test_an_organisation_name_without_letters_or_too_long_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        OrganizationName.parse(text, field="company")


# -- BirthDate ------------------------------------------------------------------------------------------


def test_a_birth_date_is_a_date_keyed_in_iso_form() -> None:
    born = BirthDate.parse("1980-02-29")
    assert born.value == date(1980, 2, 29)
    assert born.key == "1980-02-29"


def test_a_birth_date_on_the_first_day_of_1900_and_today_are_accepted() -> None:
    BirthDate(value=date(1900, 1, 1))
    BirthDate(value=utc_now().date())


@pytest.mark.parametrize(
    "value", [date(1899, 12, 31), utc_now().date() + timedelta(days=2), "1981-02-29", "yesterday"]
)
def test_a_birth_date_in_the_future_before_1900_or_malformed_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput):
        BirthDate.parse(value, field="born")


# -- PostalAddress --------------------------------------------------------------------------------------


def _address(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "street": "Via  del Corso",
        "street_number": "12/A",
        "lines": ["Scala B"],
        "locality": "Roma",
        "postcode": "00186",
        "province": "RM",
        "country": "it",
    }
    data.update(changes)
    return data


def test_a_postal_address_upper_cases_its_country_and_collapses_whitespace() -> None:
    address = PostalAddress.parse(_address())
    assert address.country == "IT"
    assert address.street == "Via del Corso"
    assert address.lines == ("Scala B",)


def test_postal_addresses_differing_in_case_and_accents_share_a_key() -> None:
    one = PostalAddress.parse(_address(locality="Forlì", street="VIA DEL CORSO"))
    other = PostalAddress.parse(_address(locality="forli", street="via del corso"))
    assert one.key == other.key


@pytest.mark.parametrize("postcode", ["0018", "001866", "OO186", "00 186"])
def test_an_italian_postcode_must_have_five_digits(postcode: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        PostalAddress.parse(_address(postcode=postcode), field="address")
    assert refused.value.errors[0]["loc"] == ("address", "postcode")


def test_a_foreign_postcode_follows_no_italian_rule() -> None:
    assert PostalAddress.parse(_address(country="GB", postcode="SW1A 1AA")).postcode == "SW1A 1AA"


@pytest.mark.parametrize("country", ["", "I", "ITA", "XX", "UK", "1T"])
def test_a_country_outside_iso_3166_alpha_2_is_refused(country: str) -> None:
    with pytest.raises(InvalidInput):
        PostalAddress.parse(_address(country=country))


def test_the_country_list_holds_every_iso_3166_alpha_2_code() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"IT", "DE", "GB", "US", "SM", "VA"} <= COUNTRY_CODES


def test_a_postal_address_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(InvalidInput):
        PostalAddress.parse(_address(floor="3"))


# -- WebLink --------------------------------------------------------------------------------------------


def test_web_links_differing_in_host_case_and_trailing_slash_share_a_key() -> None:
    one = WebLink.parse("https://WWW.Example.com/Chi-Siamo/")
    other = WebLink.parse("http://www.example.com/Chi-Siamo")
    assert one.key == other.key == "www.example.com/Chi-Siamo"


@pytest.mark.parametrize("text", ["", "example.com", "ftp://example.com", "mailto:a@b.it", "https://"])
def test_a_link_that_is_not_http_or_https_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        WebLink.parse(text, field="website")


# -- VatNumber ------------------------------------------------------------------------------------------


def test_a_partita_iva_with_a_correct_check_digit_is_stored_compact() -> None:
    number = _partita_iva("0111460100")
    vat = VatNumber(country="IT", number=f"{number[:5]} {number[5:]}")
    assert vat.number == number
    assert vat.key == f"IT{number}"


def test_a_vat_number_is_read_from_its_prefixed_text() -> None:
    number = _partita_iva("0244193096")
    assert VatNumber.parse(f"it {number}") == VatNumber(country="IT", number=number)


def test_a_partita_iva_with_a_wrong_check_digit_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        VatNumber.parse(_spoiled(_partita_iva("0111460100")), field="vat")
    assert refused.value.errors[0]["loc"][0] == "vat"


def test_a_german_vat_number_is_checked_with_the_eu_rules() -> None:
    assert VatNumber.parse("DE 136 695 976").key == "DE136695976"
    with pytest.raises(InvalidInput):
        VatNumber.parse("DE136695977")


def test_a_greek_vat_number_keeps_the_el_prefix() -> None:
    vat = VatNumber.parse("EL094259216")
    assert (vat.country, vat.key) == ("GR", "EL094259216")


def test_a_vat_number_of_a_country_without_a_known_check_is_refused() -> None:
    with pytest.raises(InvalidInput):
        VatNumber.parse({"country": "AQ", "number": "123456"})


# -- parse_identity --------------------------------------------------------------------------------------


def test_parse_identity_names_the_field_in_every_problem() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_identity(PersonName, {"given_name": "", "family_name": ""}, field="contact")
    assert [e["loc"] for e in refused.value.errors] == [
        ("contact", "given_name"),
        ("contact", "family_name"),
    ]


def test_parse_identity_returns_a_value_of_the_model_unchanged() -> None:
    email = EmailAddress.parse("a@example.com")
    assert parse_identity(EmailAddress, email) is email


def test_identity_values_are_frozen() -> None:
    email = EmailAddress.parse("a@example.com")
    with pytest.raises(ValueError, match="frozen"):
        email.address = "b@example.com"  # type: ignore[misc]
