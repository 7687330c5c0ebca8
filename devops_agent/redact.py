"""Masking secrets in everything that leaves the agent: one module, used everywhere.

Evidence is masked where it is gathered (`Registry.run`, the log reader), so no checkpoint, audit
row, incident or ledger entry holds a secret; and again at every exit (what the model reads,
notifications, the API, the process's own log). Masking twice changes nothing. A masked value
becomes `***`; what tells its kind stays (`DB_PASSWORD=***`, `Bearer ***`, `ghp_***`, PEM markers).

Every pattern is linear: character classes with bounded repeats, alternatives that begin with
different characters, no repeated group that can match one text in two ways. PEM blocks, which
span lines, are followed line by line in Python, not by a regex.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from typing import Any

MASK = "***"

# -- which names hold secrets --------------------------------------------------------------------

# A name ending in one of these holds a secret, whatever comes before (DB_PASSWORD, dbPassword).
_STRONG_ENDINGS = (
    "password", "passwd", "passphrase", "secret", "token", "credentials", "credential",
    "apikey", "accesskey", "secretkey", "privatekey",
)  # fmt: skip
# Short words that count only as a whole part of the name (DB_PASS, MYSQL_PWD; not bypass, spwd).
_STRONG_PARTS = ("pass", "pwd", "creds", "dsn")
# Parts whose value is masked when it looks random (session=8f3a..., not session=expired).
_WEAK_ENDINGS = ("session", "sessionid", "signature", "cookie", "hmac")
_WEAK_PARTS = ("key", "auth", "sid", "sig", "salt", "otp", "pin", "jwt", "cred", "private")
# Before `key`, these make it a secret whatever its value (API_KEY, signing_key, x-api-key).
_KEY_HINTS = (
    "api", "access", "secret", "private", "sign", "crypt", "master", "client", "license",
    "account", "auth", "ssh", "gpg", "pgp", "storage", "webhook", "admin", "deploy",
)  # fmt: skip
_HEADER_NAMES = ("authorization", "proxy-authorization", "cookie", "set-cookie")


def _ends_with_part(name: str, lower: str, word: str) -> bool:
    """`word` ends the name as a whole part: after a separator, a camelCase hump, or alone."""
    if not lower.endswith(word):
        return False
    cut = len(name) - len(word)
    if cut == 0 or name[cut - 1] in "_.-":
        return True
    return name[cut].isupper() and (name[cut - 1].islower() or name[cut - 1].isdigit())


@lru_cache(maxsize=4096)  # logs repeat the same few names
def secret_name(name: str) -> str | None:
    """'strong' when a value under this name is a secret, 'weak' when it is one if it looks
    random, None otherwise (password_policy, token_count, monkey)."""
    bare = name.strip("-\"'\\")
    lower = bare.lower()
    if lower.replace("_", "").replace("-", "").replace(".", "").endswith(_STRONG_ENDINGS):
        return "strong"
    if any(_ends_with_part(bare, lower, word) for word in _STRONG_PARTS) and lower != "pass":
        return "strong"  # a bare PASS is a test result, not a password
    if _ends_with_part(bare, lower, "key"):
        before = lower[: -len("key")]
        if any(hint in before for hint in _KEY_HINTS):
            return "strong"
        if before and bare == bare.upper() and any(c.isalpha() for c in before):
            return "strong"  # environment style: SENTRY_KEY, STRIPE_KEY
        return "weak"
    if lower.endswith(_WEAK_ENDINGS) or any(_ends_with_part(bare, lower, w) for w in _WEAK_PARTS):
        return "weak"
    return None


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def _classes(value: str) -> int:
    """How many of lower case, upper case and digits the value has."""
    return sum(any(map(test, value)) for test in (str.islower, str.isupper, str.isdigit))


def looks_random(value: str, min_length: int = 16, min_entropy: float = 3.0) -> bool:
    """Long enough, of two kinds of characters at least, and varied: a key, not a word."""
    return len(value) >= min_length and _classes(value) >= 2 and entropy(value) >= min_entropy


def _value_is_secret(name: str, value: str, kind: str) -> bool:
    if not value or value == MASK:
        return False
    if name.lower().endswith("pwd") and value[0] in "/~.":
        return False  # PWD=/srv/app, OLDPWD=~: the working directory, not a password
    return kind == "strong" or looks_random(value)


# -- patterns -------------------------------------------------------------------------------------

_AUTH_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:proxy-)?authorization\\?[\"']?[ \t]{0,3}[:=][ \t]{0,3}\\?[\"']?)"
    r"((?:bearer|basic|token|digest|negotiate|bot|apikey|sso-key)[ \t]{1,3})?"
    r"[^\s\"'\\]{1,4096}"
)
# A cookie header's value runs to the end of the line, or of the quoted string it is in.
_COOKIE_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:set-)?cookie[ \t]{0,3}:[ \t]{0,3})[^\r\n\"'\\]{1,4096}"
)
_URL_CREDENTIALS = re.compile(
    r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{1,30}://[^\s:/@\"'<>]{0,200}:)[^\s\"'/?#<>]{1,300}@"
)
_WEBHOOK_URLS = re.compile(
    r"(?i)((?:hooks\.slack\.com/(?:services|workflows)/[A-Z0-9]{1,20}/[A-Z0-9]{1,20}/"
    r"|discord(?:app)?\.com/api/webhooks/[0-9]{1,25}/))[A-Za-z0-9_-]{8,128}"
)
# Tokens with a recognisable prefix, which stays: ghp_***.
_PREFIXED = re.compile(
    r"(?<![A-Za-z0-9_-])("
    r"gh[pousr]_(?=[A-Za-z0-9]{30})|github_pat_(?=[A-Za-z0-9_]{22})"
    r"|gl(?:pat|dt|rt|ptt|soat|cbt|oas|imt|agent|ft)-(?=[A-Za-z0-9_-]{20})|GR1348941(?=[A-Za-z0-9_-]{20})"
    r"|xox[abposer]-(?=[A-Za-z0-9-]{10})|xapp-(?=[A-Za-z0-9-]{10})"
    r"|(?:sk|rk|pk)_(?:live|test)_(?=[A-Za-z0-9]{10})|whsec_(?=[A-Za-z0-9]{20})"
    r"|AIza(?=[A-Za-z0-9_-]{30})|GOCSPX-(?=[A-Za-z0-9_-]{20})|ya29\.(?=[A-Za-z0-9_-]{20})"
    r"|sk-(?=[A-Za-z0-9_-]{20})|npm_(?=[A-Za-z0-9]{30})|pypi-(?=AgE[A-Za-z0-9_-]{30})"
    r"|hf_(?=[A-Za-z0-9]{30})|dop_v1_(?=[a-f0-9]{40})|shp(?:at|ss|ca)_(?=[a-fA-F0-9]{30})"
    r"|SG\.(?=[A-Za-z0-9_-]{16,32}\.)|eyJ(?=[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8})"
    r"|(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)(?=[A-Z0-9]{16}(?![A-Za-z0-9]))"
    r")[A-Za-z0-9_.-]{1,4096}"
)
_PREFIX_HINTS = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-",
    "glsoat-", "glcbt-", "gloas-", "glimt-", "glagent-", "glft-", "gr1348941", "xox", "xapp-",
    "_live_", "_test_", "whsec_", "aiza", "gocspx-", "ya29.", "sk-", "npm_", "pypi-", "hf_",
    "dop_v1_", "shpat_", "shpss_", "shpca_", "sg.", "eyj", "akia", "asia", "abia", "acca", "agpa",
    "aida", "aroa", "aipa", "anpa", "anva", "apka",
)  # fmt: skip
# A name, the closing quote of a quoted name, and a separator; then, read apart, its value
# (quoted three ways, or bare). Apart, so that a value never hides the next name from the scan.
_NAME_SEP = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<name>-{0,2}[A-Za-z_][A-Za-z0-9_.-]{0,63})(?:\\?[\"'])?"
    r"[ \t]{0,3}(?:=>|[:=])[ \t]{0,3}"
)
_VALUE = re.compile(
    r"\"(?P<dq>[^\"\n]{0,400})\"|'(?P<sq>[^'\n]{0,400})'|\\\"(?P<eq>[^\"\\\n]{0,400})\\\""
    r"|(?P<bare>[^\s\"'\\,;&<>(){}\[\]]{1,400})"
)
_FLAG = re.compile(
    r"(?<![\w-])(?P<name>--?[A-Za-z][A-Za-z0-9_-]{0,63})[ \t]{1,3}(?P<bare>[^\s\"'\\-][^\s\"'\\]{0,400})"
)
_XML_ELEMENT = re.compile(
    r"(?i)(<[A-Za-z0-9_:.-]{0,40}(?:password|passwd|secret|token|apikey|api_key)>)[^<\n]{1,400}(</)"
)
_BEARER = re.compile(r"(?i)(?<![\w-])(bearer[ \t]{1,3})([A-Za-z0-9._~+/=-]{8,4096})")
_BASIC = re.compile(r"(?i)(?<![\w-])(basic[ \t]{1,3})([A-Za-z0-9+/]{6,4096}={0,2})(?![\w+/=])")
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{40,}={0,2}(?![A-Za-z0-9+/=_-])")


def _mask_pairs(text: str) -> str:
    """Mask the value of every `name=value` (`:`, `=>`, quoted or not) whose name is a secret's."""
    parts: list[str] = []
    done = 0
    for found in _NAME_SEP.finditer(text):
        if found.start() < done:
            continue  # inside a value masked already
        name = found["name"]
        kind = secret_name(name)
        value = _VALUE.match(text, found.end()) if kind else None
        if kind is None or value is None:
            continue
        group = next(g for g in ("dq", "sq", "eq", "bare") if value[g] is not None)
        if _value_is_secret(name, value[group], kind):
            parts += (text[done : value.start(group)], MASK)
            done = value.end(group)
    return "".join(parts) + text[done:] if parts else text


def _flag(match: re.Match[str]) -> str:
    name = match["name"]
    if not name.startswith("--") or secret_name(name) != "strong":
        return match[0]
    return f"{name}{match[0][len(name) : match.start('bare') - match.start()]}{MASK}"


def _bearer(match: re.Match[str]) -> str:
    token = match[2]
    if token == MASK or not (looks_random(token, 12) or "." in token.strip(".")):
        return match[0]
    return match[1] + MASK


def _basic(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match[2] + "=" * (-len(match[2]) % 4), validate=True)
    except (binascii.Error, ValueError):
        return match[0]
    return match[1] + MASK if b":" in decoded else match[0]


def _kind(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3


def _long_token(match: re.Match[str]) -> str:
    """A long random word (base64, base64url) is masked. Not a path (a slash every few
    characters), a snake_case name (a separator every few) or a CamelCase name (random text
    changes between lower case, upper case and digits at two characters in three, a name at
    one in four or five)."""
    token = match[0]
    size = len(token)
    if token.count("/") * 16 > size or (token.count("_") + token.count("-")) * 8 > size:
        return token
    changes = sum(_kind(a) != _kind(b) for a, b in zip(token, token[1:], strict=False))
    random = _classes(token) == 3 and changes >= 0.3 * (size - 1) and entropy(token) >= 3.9
    return MASK if random else token


# Words one of which a name holding a secret has, in lower case: lines without any skip the scan.
_NAME_HINTS = (
    "pass", "pwd", "secret", "token", "cred", "key", "auth", "sess", "sig", "cookie", "hmac",
    "salt", "otp", "pin", "jwt", "priv", "dsn",
)  # fmt: skip
# In order, each with the strings (lower case) one of which a text needs for the rule to apply:
# a cheap test that spares most log lines most rules.
_RULES: tuple[tuple[Callable[[str], str], tuple[str, ...]], ...] = (
    (partial(_AUTH_HEADER.sub, r"\1\2" + MASK), ("authorization",)),
    (partial(_COOKIE_HEADER.sub, r"\1" + MASK), ("cookie",)),
    (partial(_URL_CREDENTIALS.sub, r"\1" + MASK + "@"), ("://",)),
    (partial(_WEBHOOK_URLS.sub, r"\1" + MASK), ("hooks.slack.com", "/api/webhooks/")),
    (partial(_PREFIXED.sub, r"\1" + MASK), _PREFIX_HINTS),
    (_mask_pairs, _NAME_HINTS),
    (partial(_XML_ELEMENT.sub, r"\1" + MASK + r"\2"), ("</",)),
    (partial(_FLAG.sub, _flag), ("--",)),
    (partial(_BEARER.sub, _bearer), ("bearer",)),
    (partial(_BASIC.sub, _basic), ("basic",)),
    (partial(_LONG_TOKEN.sub, _long_token), ()),
)


def _redact_line(text: str) -> str:
    lower = text.lower()  # for the hints only: what masking removes only makes a rule run more
    for rule, hints in _RULES:
        if not hints or any(map(lower.__contains__, hints)):
            text = rule(text)
    return text


# -- PEM blocks and other keys that span lines ---------------------------------------------------

_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{1,64}-----")
_END = re.compile(r"-----END [A-Z0-9 ]{1,64}-----")
_PEM_HEADER = re.compile(r"^\s{0,8}(?:Proc-Type|DEK-Info|Comment|Version|Hash):")
_PUTTY_PRIVATE = re.compile(r"Private-Lines:[ \t]{0,3}(\d{1,4})")
_B64 = re.compile(r"^[A-Za-z0-9+/]{1,128}={0,2}$")
_TRAILING_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{4,128}={0,2}$")


def _body(line: str, last: bool = False) -> bool:
    """Whether the line may be of a key's body: long, mixed base64 (the last line may be short)."""
    token = (line.rsplit(None, 1) or [""])[-1]
    if not line.strip() or _PEM_HEADER.match(line):
        return True
    if not _B64.match(token):
        return False
    if last:  # short, but still not a plain word
        return _classes(token) >= 2 or any(c in token for c in "+/=")
    return len(token) >= 16 and _classes(token) == 3


def _inline_blocks(line: str) -> tuple[str, bool]:
    """Mask the blocks begun on this line: each to its END, or the end of the quoted string it is
    in (JSON), or the end of the line, where it goes on below (then True)."""
    parts: list[str] = []
    pos = 0
    while (begin := _BEGIN.search(line, pos)) is not None:
        parts += (_redact_line(line[pos : begin.start()]), begin[0])
        end, quote = _END.search(line, begin.end()), line.find('"', begin.end())
        if end is not None and (quote < 0 or end.start() < quote):
            parts += (MASK, end[0])
            pos = end.end()
        elif quote >= 0:
            parts.append(MASK if line[begin.end() : quote].strip("\\ ") else "")
            pos = quote - (line[quote - 1] == "\\")  # keep an escaped quote escaped
        else:
            return "".join(parts) + (MASK if line[begin.end() :].strip() else ""), True
    return "".join(parts) + _redact_line(line[pos:]), False


def _walk_back(out: list[str], i: int, floor: int) -> None:
    """Mask the body above an END whose BEGIN is not in the lines (a tail begun inside)."""
    j = i - 1
    if j >= floor and _body(out[j], last=True):
        out[j] = MASK
        j -= 1
    while j >= floor and (out[j] == MASK or _body(out[j])):
        out[j] = MASK
        j -= 1


def _mask_body(out: list[str], i: int) -> int:
    """Mask the body below a BEGIN, up to its END or a line that is no body's; where it ends."""
    while i < len(out) and _END.search(out[i]) is None:
        closing = i + 1 < len(out) and _END.search(out[i + 1]) is not None
        if not _body(out[i], last=closing):
            break
        out[i] = MASK
        i += 1
    return i


def redact_lines(lines: Sequence[str]) -> list[str]:
    """Mask lines of log text, following PEM blocks (and PuTTY keys) across lines: a body is
    masked whole, also when its BEGIN or END is not in the lines. Each line is read a few times."""
    out = list(lines)
    i, floor = 0, 0  # a walk back never goes above the end of the last block
    while i < len(out):
        line = out[i]
        if "-----" not in line and "Private-Lines" not in line:
            out[i] = _redact_line(line)
            i += 1
            continue
        begin, end = _BEGIN.search(line), _END.search(line)
        putty = _PUTTY_PRIVATE.search(line)
        if end is not None and (begin is None or end.start() < begin.start()):
            _walk_back(out, i, floor)
            prefix = line[: end.start()]
            run = _TRAILING_B64.search(prefix)
            prefix = _redact_line(prefix[: run.start()]) + MASK if run else _redact_line(prefix)
            rest, open_block = _inline_blocks(line[end.start() :])
            out[i] = prefix + rest
        elif begin is not None:
            out[i], open_block = _inline_blocks(line)
        elif putty is not None:
            stop = min(len(out), i + 1 + int(putty[1]))
            out[i + 1 : stop] = [MASK] * (stop - i - 1)
            out[i] = _redact_line(line)
            i = floor = stop
            continue
        else:
            out[i] = _redact_line(line)
            i += 1
            continue
        i += 1
        if open_block:
            i = _mask_body(out, i)
        floor = i
    return out


def redact(text: str) -> str:
    """`text` with every secret it holds masked."""
    if "-----" in text or "Private-Lines" in text:
        return "\n".join(redact_lines(text.split("\n")))
    return _redact_line(text)


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data with every string masked; a list of strings is read as lines
    (so a PEM block split over them is masked whole), and a value under a secret's name
    (`{"password": ...}`, `{"Authorization": ...}`) is masked whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _field(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(item, str) for item in value):
            masked: list[Any] = redact_lines(value)
        else:
            masked = [redact_data(item) for item in value]
        return type(value)(masked)
    return value


def _field(key: Any, value: Any) -> Any:
    if isinstance(key, str) and type(value) in (str, int, float):
        kind = "strong" if key.lower() in _HEADER_NAMES else secret_name(key)
        if kind is not None and _value_is_secret(key, str(value), kind):
            return MASK
    return redact_data(value)
