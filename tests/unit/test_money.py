"""Money: a non-negative Decimal amount in one ISO 4217 currency, kept to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmcore import CurrencyMismatch, InvalidInput, Money


def test_an_amount_is_kept_to_two_decimals_by_default() -> None:
    assert Money.of("1234.5", "EUR").amount == Decimal("1234.50")
    assert str(Money.of(3, "usd")) == "3.00 USD"


def test_an_amount_is_kept_to_the_minor_unit_of_its_currency() -> None:
    assert Money.of("1234.6", "JPY").amount == Decimal("1235")
    assert Money.of("1.2345", "KWD").amount == Decimal("1.234")  # half to even


def test_the_currency_code_is_upper_cased_and_must_be_iso_4217() -> None:
    assert Money.of(1, " chf ").currency == "CHF"
    with pytest.raises(InvalidInput, match="ISO 4217"):
        Money.of(1, "XYZ")


@pytest.mark.parametrize("amount", ["-0.01", "NaN", "Infinity", "ten", 1.5])
def test_a_negative_non_finite_non_numeric_or_float_amount_is_refused(amount: object) -> None:
    with pytest.raises(InvalidInput):
        Money.of(amount, "EUR")  # type: ignore[arg-type]


def test_minus_zero_reads_as_zero() -> None:
    assert str(Money.of("-0", "EUR").amount) == "0.00"


def test_amounts_in_one_currency_add_subtract_and_compare() -> None:
    a, b = Money.of("10.10", "EUR"), Money.of("0.90", "EUR")
    assert a + b == Money.of(11, "EUR")
    assert a - b == Money.of("9.20", "EUR")
    assert b < a
    assert a >= b


def test_amounts_in_different_currencies_do_not_combine() -> None:
    with pytest.raises(CurrencyMismatch):
        Money.of(1, "EUR") + Money.of(1, "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of(1, "EUR") < Money.of(1, "USD")


def test_a_subtraction_below_zero_is_refused() -> None:
    with pytest.raises(InvalidInput, match="negative"):
        Money.of(1, "EUR") - Money.of(2, "EUR")


def test_money_is_stored_as_strings_and_read_back_equal() -> None:
    money = Money.of("1234.5", "EUR")
    assert money.stored() == {"amount": "1234.50", "currency": "EUR"}
    assert Money.model_validate(money.stored()) == money
