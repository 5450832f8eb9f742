"""The rule for model names and versions: a DNS-1123 subdomain (pure).

A model name and version become Docker container names and labels, Kubernetes object names and
local file names (``<name>_<version>``), so they must be valid in all three: dot-separated labels
of lowercase letters, digits and ``-``, each starting and ending with a letter or digit, 253
characters at most. That also rules out ``/``, ``..`` as a path component, ``,`` and ``:`` (the
Redis key separators). ``clipper_admin._validation`` states the same rule on the client side (it
may not import this package); a unit test checks that the two agree.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DNS1123_MAX_LENGTH", "DNS1123_SUBDOMAIN_REGEX", "invalid_name_message", "is_dns1123_subdomain"]

_DNS1123_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_REGEX: Final = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
DNS1123_MAX_LENGTH: Final = 253
_PATTERN: Final = re.compile(DNS1123_SUBDOMAIN_REGEX)


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= DNS1123_MAX_LENGTH and _PATTERN.fullmatch(value) is not None


def invalid_name_message(kind: str, value: str) -> str:
    """``kind`` is e.g. ``model name``; the text says what is allowed."""
    return (
        f"Invalid {kind} supplied: {value!r}. A {kind} must be a valid DNS-1123 subdomain: at most "
        f"{DNS1123_MAX_LENGTH} characters, lowercase letters, digits, '-' and '.', starting and "
        f"ending with a letter or digit (for example 'my-model' or 'v1.2'; validation regex "
        f"'{DNS1123_SUBDOMAIN_REGEX}')"
    )
