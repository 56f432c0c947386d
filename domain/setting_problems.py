"""A bad setting told to the operator: which variable, what is wrong, where to get its value."""

from __future__ import annotations

from pydantic import ValidationError

# Where an operator finds each required value; shown when one is missing or invalid.
WHERE_TO_GET: dict[str, str] = {
    "WHATSAPP_TOKEN": "Meta Business Settings > Users > System users > Generate token "
    "(permissions whatsapp_business_messaging, whatsapp_business_management)",
    "VERIFY_TOKEN": "any long random string you choose; enter the same one as the "
    "webhook's Verify token in the Meta app dashboard (WhatsApp > Configuration)",
    "APP_SECRET": "Meta app dashboard > App settings > Basic > App secret",
    "PHONE_NUMBER_ID": "Meta app dashboard > WhatsApp > API Setup > Phone number ID "
    "(the id, not the phone number itself)",
    "GEMINI_API_KEY": "Google AI Studio > Get API key (https://aistudio.google.com/apikey)",
}


def describe_problems(error: ValidationError) -> list[str]:
    """One line per bad setting, naming the variable and where to get it, never its value."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in problem["loc"]).upper()
        if problem["type"] == "missing":
            reason = "is not set"
        elif problem["type"] == "value_error":
            reason = problem["msg"].removeprefix("Value error, ")
        else:
            reason = "is invalid: " + problem["msg"][:1].lower() + problem["msg"][1:]
        where = WHERE_TO_GET.get(name)
        line = f"  {name} {reason}" if name else f"  {reason}"
        lines.append(line + (f"\n      get it from: {where}" if where else ""))
    return lines
