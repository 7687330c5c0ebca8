"""REDACT_IDENTIFIERS: host names, IP addresses and e-mail addresses as pseudonyms for the model.

With the setting on, the model reads `host-1` for the incident's service, `ip-2` for an address
in its logs and `email-1` for a person, and whatever it names is mapped back before anything
checks or acts on it, so a plan still acts on the real service. The numbering is derived from
the incident alone (its known names first, in order, then what its data holds, in order), so the
diagnosis and the plan of one run, each asked in its own call, see the same pseudonyms.

Host names are the names the agent resolved (the target, its containers, its dependencies) and
fully qualified names under a common top-level domain; loopback addresses stay, as they say
nothing about anyone and matter to a diagnosis (`connection refused to 127.0.0.1:5432`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from devops_agent.reasoning import prompts
from devops_agent.reasoning.base import Investigation
from devops_agent.reasoning.validation import allowed_targets

_TLDS = (
    "com|net|org|io|co|dev|app|ai|cloud|internal|local|localdomain|lan|corp|intra|private|home"
    "|example|test|invalid|svc|arpa|edu|gov|info|biz|eu|uk|de|fr|nl|us|ca|au|jp|in|br|ch|se"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
    r"(?![A-Za-z0-9-])"
)
_FQDN = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.@-])(?:[a-z0-9][a-z0-9-]{{0,62}}\.){{1,10}}(?:{_TLDS})(?![A-Za-z0-9_.-])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?<![A-Za-z0-9_.])(?:{_OCTET}\.){{3}}{_OCTET}(?![A-Za-z0-9_]|\.[0-9])")
_IPV6 = re.compile(
    r"(?i)(?<![A-Za-z0-9_:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
    r"|(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?)"
    r"(?![A-Za-z0-9_:])"
)
_PSEUDONYM = re.compile(r"(?<![A-Za-z0-9_.-])(?:host|ip|email)-[0-9]{1,6}(?![A-Za-z0-9_-])")
_KEEP = frozenset({"::", "::1", "0.0.0.0"})  # noqa: S104 (an address in text, not a bind)


class Pseudonyms:
    """One incident's mapping between identifiers and their pseudonyms, both ways."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.real: dict[str, str] = {}  # pseudonym -> identifier
        self.alias: dict[str, str] = {}  # identifier -> pseudonym
        self._counts: Counter[str] = Counter()
        names = [name for name in dict.fromkeys(known) if name and not _PSEUDONYM.fullmatch(name)]
        for name in names:
            self._pseudonym(name, "host")
        longest_first = sorted(names, key=len, reverse=True)
        self._known = (
            re.compile(
                r"(?<![A-Za-z0-9_.-])(?:"
                + "|".join(map(re.escape, longest_first))
                + r")(?![A-Za-z0-9_-])"
            )
            if names
            else None
        )

    def _pseudonym(self, identifier: str, kind: str) -> str:
        if identifier not in self.alias:
            self._counts[kind] += 1
            alias = f"{kind}-{self._counts[kind]}"
            self.alias[identifier], self.real[alias] = alias, identifier
        return self.alias[identifier]

    def _ip(self, match: re.Match[str]) -> str:
        found = match[0]
        if found in _KEEP or found.startswith("127."):
            return found
        return self._pseudonym(found, "ip")

    def hide(self, text: str) -> str:
        """The text with every identifier replaced by its pseudonym (new ones numbered on)."""
        if self._known is not None:
            text = self._known.sub(lambda m: self.alias[m[0]], text)
        if "@" in text:
            text = _EMAIL.sub(lambda m: self._pseudonym(m[0], "email"), text)
        if "." in text:
            text = _FQDN.sub(lambda m: self._pseudonym(m[0].lower(), "host"), text)
            text = _IPV4.sub(self._ip, text)
        if "::" in text or text.count(":") >= 7:
            text = _IPV6.sub(self._ip, text)
        return text

    def reveal(self, text: str) -> str:
        """The text with every pseudonym this mapping made replaced by the real identifier."""
        if not self.real or "-" not in text:
            return text
        return _PSEUDONYM.sub(lambda m: self.real.get(m[0], m[0]), text)

    def reveal_data(self, value: Any) -> Any:
        """`reveal` on every string (keys included) inside JSON-like data."""
        if isinstance(value, str):
            return self.reveal(value)
        if isinstance(value, dict):
            return {self.reveal_data(k): self.reveal_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.reveal_data(item) for item in value)
        return value


def pseudonyms_for(case: Investigation) -> Pseudonyms:
    """The incident's pseudonyms: its resolved names first, then what its data holds, in order,
    so that each step of one run (each its own call) numbers them alike."""
    target = case.target
    known = allowed_targets(case) + ((target.containers + target.depends_on) if target else [])
    names = Pseudonyms(known + [e.target for e in case.evidence])
    names.hide(prompts.dump(prompts.case_data(case)))
    return names
