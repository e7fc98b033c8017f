"""Business rules as pure, separately testable functions."""

from crmcore.policies.lifecycle import (
    CONVERTIBLE,
    DISQUALIFIABLE,
    check_can_assign,
    check_can_convert,
    check_can_disqualify,
    check_can_engage,
    check_can_link,
    check_can_qualify,
    check_can_reopen,
    check_can_restore,
    check_can_set_aside,
    check_registration,
    qualified_stage,
)

__all__ = [
    "CONVERTIBLE",
    "DISQUALIFIABLE",
    "check_can_assign",
    "check_can_convert",
    "check_can_disqualify",
    "check_can_engage",
    "check_can_link",
    "check_can_qualify",
    "check_can_reopen",
    "check_can_restore",
    "check_can_set_aside",
    "check_registration",
    "qualified_stage",
]
