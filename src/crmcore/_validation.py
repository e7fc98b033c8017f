"""Turning pydantic validation errors into crmcore's :class:`~crmcore.exceptions.InvalidInput`."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from crmcore.exceptions import InvalidInput

__all__ = ["invalid_input", "validate"]

M = TypeVar("M", bound=BaseModel)


def invalid_input(error: pydantic.ValidationError, prefix: str = "") -> InvalidInput:
    """Turn a pydantic error into :class:`InvalidInput`, keeping every problem it lists."""
    errors = [
        {"loc": tuple(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()
    ]
    summary = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in errors[:5]
    )
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidInput(f"{prefix}invalid {error.title}: {summary}{more}", errors)


def validate(model: type[M], data: Any) -> M:
    """Validate ``data`` (a mapping) as ``model``; raise :class:`InvalidInput` if it does not fit."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise invalid_input(error) from None
