"""The asps policy format (Go package ``policy``), for judging a server that runs in a TEE.

A server policy is a policy file whose apps describe the acceptable server
(``asps fetch --server-policy FILE``); an app needs no ``secrets`` there.
This module reads the same YAML or JSON with the same rules as the Go
client (``client.LoadServerPolicy``: ``policy.Parse`` with placeholder
secrets) and refuses the same documents with the same messages, then judges
a server's verified claims as ``policy.Match`` does: TCB status (UpToDate
unless ``tcb_statuses`` widens it), advisories (none unless
``advisory_ids`` names them), debug (refused unless ``allow_debug``), TD
attributes, product id and minimum SVNs, and the rules that an SGX app pins
code (``mr_enclave``, or ``mr_signer`` with ``isv_prod_id``) and a TDX app
pins code (``mr_td``, ``rtmr1`` and ``rtmr2``; ``rtmr0``, ``rtmr3``,
``mr_config_id``, ``mr_owner`` and ``mr_owner_config`` only narrow).

Reason strings are the Go sentinels' texts (``policy.ErrNoSelector`` is
``"no measurement selector"``, ...), so code can branch on them in both
languages.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_FILE_SIZE = 4 << 20
"""A policy file's size limit (Go's policy.MaxFileSize)."""
MAX_DEPTH = 32

# Why a policy file is refused (Go: policy.ErrSyntax, ...).
ERR_SYNTAX = "malformed policy"
ERR_UNKNOWN_FIELD = "unknown field"
ERR_BAD_VALUE = "bad value"
ERR_MISSING_FIELD = "missing field"
ERR_NO_SELECTOR = "no measurement selector"
ERR_BAD_MEASUREMENT = "bad measurement"
ERR_DUPLICATE_ID = "duplicate app id"
ERR_BAD_TCB_STATUS = "bad tcb status"
ERR_NO_SECRETS = "no secrets"
ERR_EMPTY_SECRET_REF = "empty secret reference"  # noqa: S105 - a reason, not a secret
ERR_UNKNOWN_FORMAT = "unknown policy format"
ERR_SERVER_POLICY = "unusable server policy"  # Go: client.ErrServerPolicy

# Why a server is refused (Go: policy.ErrBadClaims, ...).
DENY_BAD_CLAIMS = "incomplete claims"
DENY_SIMULATED = "simulated evidence not allowed"
DENY_TEE_MISMATCH = "no app for this TEE"
DENY_NO_MATCHING_APP = "no matching app"
DENY_DEBUG = "debug workload not allowed"
DENY_TCB_STATUS = "tcb status not allowed"
DENY_ADVISORY = "advisory not allowed"
DENY_TD_ATTRIBUTE = "td attribute not allowed"
DENY_SERVICE_TD = "service td not allowed"
DENY_BINDING = "binding not allowed"
DENY_TCB_EVALUATION = "tcb evaluation data number too low"

STATUS_UP_TO_DATE = "UpToDate"
KNOWN_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
    "Unknown",
)

BINDING_REPORT_DATA = "report-data"
BINDING_TCG = "tcg"
BINDING_TCG_LABELLED = "tcg-labelled"
BINDING_TCG_NONCE = "tcg-nonce"

SERVER_SECRET_NAME = "asps-server"  # noqa: S105 - a placeholder name, not a secret
"""The placeholder secret of a server-policy app that lists none (as the Go client)."""


# ---------------------------------------------------------------- errors


def go_quote(s: str | bytes) -> str:
    """Go's strconv.Quote (invalid UTF-8 bytes as \\xNN)."""
    b = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s
    out = ['"']
    text = b.decode("utf-8", "surrogateescape")
    for c in text:
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{o - 0xDC00:02x}")
        elif c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c.isprintable():
            out.append(c)
        elif c in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[c])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def quote_short(s: str) -> str:
    """Go's quoteShort: quoted, cut to its first 72 bytes."""
    b = s.encode("utf-8", "surrogateescape")
    if len(b) > 72:
        return go_quote(b[:72]) + "…"
    return go_quote(b)


@dataclass(frozen=True)
class LoadError:
    """One problem in a policy document (Go: *policy.LoadError); ``str`` is Go's message."""

    reason: str
    app: str = ""
    index: int = 0
    field: str = ""
    detail: str = ""

    def __str__(self) -> str:
        s = "policy"
        if self.app:
            s += ": app " + go_quote(self.app)
        elif self.index > 0:
            s += f": app #{self.index}"
        if self.field:
            s += ": " + self.field
        s += ": " + self.reason
        if self.detail:
            s += ": " + self.detail
        return s


class PolicyError(ValueError):
    """A server policy that cannot be used: every problem found, as the Go client lists them.

    ``errors`` are the :class:`LoadError` s (one per problem), ``reasons``
    their reasons; ``str`` joins their messages with newlines, like Go's
    ``errors.Join``.
    """

    def __init__(self, errors: list[LoadError] | str, *, reason: str = "", prefix: str = "") -> None:
        if isinstance(errors, str):
            self.errors: list[LoadError] = []
            self.reasons: tuple[str, ...] = (reason or ERR_SERVER_POLICY,)
            super().__init__(prefix + errors)
            return
        self.errors = list(errors)
        self.reasons = tuple(e.reason for e in self.errors)
        super().__init__(prefix + "\n".join(str(e) for e in self.errors))


# ---------------------------------------------------------------- documents


class _Num(str):
    """A JSON number, kept as its literal text (a hex value YAML took for a number survives)."""


class _Obj:
    """A JSON object / YAML mapping: keys in order (repeats are caught before one is built)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs

    def get(self, key: str) -> Any:
        for k, v in self.pairs:
            if k == key:
                return v
        return _ABSENT

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.pairs)


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


def _kind(v: Any) -> str:
    if isinstance(v, _Num):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null (an empty value)"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, _Obj):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return "a number"


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


_JSON_TOKEN = re.compile(r'[{}\[\],:]|"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true\b|false\b|null\b')


def _is_json_number(s: str) -> bool:
    return _JSON_NUMBER.fullmatch(s) is not None


def _syntax(detail: str, **kw: Any) -> PolicyError:
    return PolicyError([LoadError(ERR_SYNTAX, detail=detail, **kw)])


def _json_tree(text: str) -> Any:
    def constant(name: str) -> Any:
        raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")

    dec = json.JSONDecoder(object_pairs_hook=_Obj, parse_int=_Num, parse_float=_Num, parse_constant=constant)
    try:
        return dec.decode(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            # Go walks the document in order: a problem with its keys comes
            # before the data after it.
            first = dec.raw_decode(text, len(text) - len(text.lstrip(" \t\r\n")))[0]
            try:
                _check_keys(first, "", False, 0)
            except _KeyError as ke:
                raise PolicyError([_attribute_to_app(first, ke)]) from None
            # Go's decoder reports the offset after the next token, if it is one.
            tok = _JSON_TOKEN.match(text, e.pos)
            end = tok.end() if tok else e.pos
            raise _syntax(f"data after the end of the document (byte {len(text[:end].encode())})") from None
        if e.pos >= len(text.rstrip()):
            raise _syntax("unexpected end of document") from None
        raise _syntax(f"{e.msg} (byte {len(text[: e.pos].encode())})") from None
    except (ValueError, RecursionError) as e:
        raise _syntax(str(e)) from None


# YAML: the project's one strict reader (Go: internal/yamlstrict) on PyYAML's
# event parser: one document; no anchors, aliases, merge keys or custom tags;
# no key twice; bounded nesting; plain scalars resolved as YAML 1.2's core
# schema does (yes/no/on/off are strings, as in Go), numbers kept as text.


@dataclass
class _YNode:
    kind: str  # "scalar", "seq", "map", "alias"
    line: int
    tag: str = ""
    anchor: str = ""
    value: str = ""
    plain: bool = False
    children: list[Any] = field(default_factory=list)


class _YError(Exception):
    def __init__(self, line: int, reason: str, detail: str = "", path: list[str] | None = None) -> None:
        self.line, self.reason, self.detail, self.path = line, reason, detail, path
        msg = reason + (": " + detail if detail else "")
        super().__init__(f"line {line}: {msg}" if line > 0 else msg)


_Y_ALIAS = "YAML anchors and aliases are not supported"
_Y_MERGE = "YAML merge keys (<<) are not supported"
_Y_TAG = "custom YAML tags are not supported"
_Y_KEY = "keys must be plain names"
_Y_DEPTH = "nested too deeply"
_Y_DUP = "repeated key"
_Y_SYNTAX = "YAML syntax error"
_Y_DOCS = "more than one YAML document"
_STD_TAG = "tag:yaml.org,2002:"
_NULLS = ("", "~", "null", "Null", "NULL")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def _short_tag(tag: str) -> str:
    if tag.startswith(_STD_TAG):
        return "!!" + tag[len(_STD_TAG) :]
    return tag


def _yaml_events(data: str) -> Iterator[Any]:
    try:
        import yaml
    except ImportError:
        raise PolicyError(
            "a YAML server policy needs PyYAML: pip install 'asps[attested-server]' (or give the policy as JSON)",
            reason=ERR_UNKNOWN_FORMAT,
        ) from None
    try:
        yield from yaml.parse(data, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else 0
        detail = " ".join(x for x in (e.context, e.problem) if x)
        raise _YError(line, _Y_SYNTAX, detail) from None
    except yaml.YAMLError as e:
        raise _YError(0, _Y_SYNTAX, str(e)) from None


def _yaml_root(data: str) -> _YNode | None:
    """The one document's root node, or None for an empty document."""
    import yaml

    stack: list[_YNode] = []
    root: _YNode | None = None
    docs = 0
    for ev in _yaml_events(data):
        line = ev.start_mark.line + 1
        if isinstance(ev, yaml.DocumentStartEvent):
            docs += 1
            if docs > 1:
                raise _YError(line, _Y_DOCS)
            continue
        if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
            continue
        if isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            stack.pop()
            continue
        if isinstance(ev, yaml.AliasEvent):
            n = _YNode("alias", line)
        elif isinstance(ev, yaml.ScalarEvent):
            n = _YNode(
                "scalar", line, tag=ev.tag or "", anchor=ev.anchor or "", value=ev.value, plain=ev.style is None and not ev.tag
            )
        else:
            kind = "seq" if isinstance(ev, yaml.SequenceStartEvent) else "map"
            n = _YNode(kind, line, tag=ev.tag or "", anchor=ev.anchor or "")
        if len(stack) > 4 * MAX_DEPTH:
            raise _YError(line, _Y_DEPTH)
        if stack:
            stack[-1].children.append(n)
        else:
            root = n
        if n.kind in ("seq", "map"):
            stack.append(n)
    if root is None or (root.kind == "scalar" and root.plain and root.value == ""):
        return None
    return root


def _pairs(children: list[_YNode]) -> list[tuple[_YNode, _YNode]]:
    """A mapping node's children as (key, value) pairs."""
    return [(children[i], children[i + 1]) for i in range(0, len(children) - 1, 2)]


def _yaml_check(n: _YNode, depth: int, path: list[str]) -> None:
    def fail(line: int, reason: str, detail: str = "") -> _YError:
        return _YError(line, reason, detail, list(path))

    if depth > MAX_DEPTH:
        raise fail(n.line, _Y_DEPTH)
    if n.kind == "alias" or n.anchor:
        raise fail(n.line, _Y_ALIAS)
    if n.tag and n.tag != "!" and not n.tag.startswith(_STD_TAG):
        raise fail(n.line, _Y_TAG, go_quote(n.tag))
    if n.kind == "seq":
        for i, c in enumerate(n.children):
            _yaml_check(c, depth + 1, [*path, str(i)])
    elif n.kind == "map":
        seen: dict[str, int] = {}
        for k, v in _pairs(n.children):
            if k.kind == "alias" or k.anchor:
                raise fail(k.line, _Y_ALIAS)
            if k.kind == "scalar" and _scalar_tag(k) == "!!merge":
                raise fail(k.line, _Y_MERGE)
            if k.kind != "scalar" or _scalar_tag(k) == "!!null":
                raise fail(k.line, _Y_KEY)
            if k.value in seen:
                raise fail(k.line, _Y_DUP, f"{go_quote(k.value)} appears twice (also on line {seen[k.value]})")
            seen[k.value] = k.line
            _yaml_check(v, depth + 1, [*path, k.value])


def _scalar_tag(n: _YNode) -> str:
    """The short tag Go's yaml.v3 resolves a scalar to (core schema)."""
    if n.tag and n.tag != "!":
        return _short_tag(n.tag)
    if not n.plain:
        return "!!str"
    v = n.value
    if v in _NULLS:
        return "!!null"
    if v in _BOOLS:
        return "!!bool"
    if v == "<<":
        return "!!merge"
    if _is_json_number(v):
        return "!!float" if any(c in v for c in ".eE") else "!!int"
    return "!!str"


def _yaml_value(n: _YNode, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _YError(n.line, _Y_DEPTH)
    if n.kind == "seq":
        return [_yaml_value(c, depth + 1) for c in n.children]
    if n.kind == "map":
        return _Obj([(k.value, _yaml_value(v, depth + 1)) for k, v in _pairs(n.children)])
    if n.kind == "alias":
        raise _YError(n.line, _Y_ALIAS)
    t = _scalar_tag(n)
    if t == "!!null":
        return None
    if t == "!!bool":
        b = n.value.lower()
        if b not in ("true", "false"):
            raise _YError(n.line, _Y_SYNTAX, go_quote(n.value) + " is not true or false")
        return b == "true"
    if t in ("!!int", "!!float"):
        return _Num(n.value) if _is_json_number(n.value) else n.value
    if t in ("!!str", "!!binary", "!!timestamp"):
        return n.value
    raise _YError(n.line, _Y_TAG, go_quote(_short_tag(n.tag) if n.tag else t))


def _yaml_tree(text: str) -> Any:
    root: _YNode | None = None
    try:
        root = _yaml_root(text)
        if root is None:
            raise _syntax("empty document")
        _yaml_check(root, 0, [])
        return _yaml_value(root, 0)
    except _YError as e:
        le = LoadError(ERR_SYNTAX, detail=str(e))
        p = e.path or []
        if root is not None and len(p) >= 2 and p[0] == "apps" and p[1].isdigit():
            i = int(p[1])
            le = LoadError(ERR_SYNTAX, app=_yaml_app_id(root, i), index=i + 1, field=".".join(p[2:]), detail=str(e))
        raise PolicyError([le]) from None


def _yaml_app_id(root: _YNode, i: int) -> str:
    if root.kind != "map":
        return ""
    for k, v in _pairs(root.children):
        if k.value == "apps" and v.kind == "seq" and i < len(v.children):
            app = v.children[i]
            if app.kind == "map":
                for ak, av in _pairs(app.children):
                    if ak.value == "id" and av.kind == "scalar":
                        return str(av.value)
            return ""
    return ""


def _is_field_name(s: str) -> bool:
    return 0 < len(s) <= 64 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in s)


def _valid_name(s: str) -> bool:
    """An app id, secret name or advisory id: printable, no blanks, at most 256 bytes."""
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return 0 < len(b) <= 256 and all(c.isprintable() and not c.isspace() for c in s)


def _check_keys(v: Any, path: str, is_map: bool, depth: int) -> None:
    """Go's checkKeys: repeated keys, field names that are not lower-case snake_case, depth."""
    if not isinstance(v, (_Obj, list)):
        return
    if depth >= MAX_DEPTH:
        raise _KeyError(path, ERR_SYNTAX, "nested too deeply")
    if isinstance(v, list):
        for i, c in enumerate(v):
            _check_keys(c, f"{path}[{i}]", False, depth + 1)
        return
    seen: set[str] = set()
    for k, c in v.pairs:
        if k in seen:
            raise _KeyError(path, ERR_SYNTAX, "key " + quote_short(k) + " appears twice")
        seen.add(k)
        if not is_map and not _is_field_name(k):
            raise _KeyError(path, ERR_UNKNOWN_FIELD, quote_short(k) + " (field names are lower-case snake_case)")
        child = f"{path}.{k}" if path else k
        _check_keys(c, child, not is_map and k == "secrets", depth + 1)


class _KeyError(Exception):
    def __init__(self, path: str, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.path, self.reason, self.detail = path, reason, detail


def _attribute_to_app(tree: Any, e: _KeyError) -> LoadError:
    m = re.fullmatch(r"apps\[(\d+)\](.*)", e.path, re.S)
    if m is None:
        return LoadError(e.reason, field=e.path, detail=e.detail)
    i = int(m.group(1))
    app = ""
    apps = tree.get("apps") if isinstance(tree, _Obj) else _ABSENT
    if isinstance(apps, list) and i < len(apps) and isinstance(apps[i], _Obj):
        app_id = _id_text(apps[i].get("id"))
        if _valid_name(app_id):
            app = app_id
    fld = m.group(2)
    return LoadError(e.reason, app=app, index=i + 1, field=fld[1:] if fld.startswith(".") else fld, detail=e.detail)


def _id_text(v: Any) -> str:
    return str(v) if isinstance(v, str) else ""


# ---------------------------------------------------------------- apps


@dataclass(frozen=True)
class SGXSelector:
    """What an SGX server must show (Go: policy.SGXSelector); unset fields are not checked."""

    mr_enclave: bytes | None = None
    mr_signer: bytes | None = None
    isv_prod_id: int | None = None
    min_isv_svn: int = 0
    config_id: bytes | None = None
    """Chosen by the enclave's loader at launch (with KSS): it only narrows a match."""
    min_config_svn: int = 0
    """Chosen by the loader too: it only narrows a match."""


@dataclass(frozen=True)
class TDXSelector:
    """What a TDX server must show (Go: policy.TDXSelector): mr_td, rtmr1 and rtmr2 always set."""

    mr_td: bytes | None = None
    rtmr: tuple[bytes | None, bytes | None, bytes | None, bytes | None] = (None, None, None, None)
    mr_config_id: bytes | None = None
    mr_owner: bytes | None = None
    mr_owner_config: bytes | None = None
    mr_servicetd: bytes | None = None
    allow_sept_ve: bool = False


@dataclass(frozen=True)
class App:
    """One acceptable server identity of a server policy (Go: policy.App)."""

    id: str
    tee: str
    sgx: SGXSelector | None = None
    tdx: TDXSelector | None = None
    runtime: str = ""
    tcb_statuses: tuple[str, ...] = (STATUS_UP_TO_DATE,)
    advisory_ids: tuple[str, ...] = ()
    allow_debug: bool = False
    binding: str = ""
    min_tcb_evaluation_data_number: int = 0


@dataclass(frozen=True)
class Policy:
    """A parsed, validated server policy."""

    apps: tuple[App, ...]
    allow_simulated: bool = False
    min_tcb_evaluation_data_number: int = 0


class _Reader:
    """Go's policy reader: interprets the fields of one app, collecting a LoadError per problem."""

    def __init__(self, app: str = "", index: int = 0) -> None:
        self.app, self.index = app, index
        self.errs: list[LoadError] = []

    def fail(self, fld: str, reason: str, detail: str) -> None:
        self.errs.append(LoadError(reason, app=self.app, index=self.index, field=fld, detail=detail))

    def text(self, fld: str, v: Any, numbers: bool) -> tuple[str, bool]:
        if v is _ABSENT:
            return "", False
        if isinstance(v, _Num):
            if numbers:
                return str(v), True
        elif isinstance(v, str):
            return v, True
        elif v is None:
            return "", True
        self.fail(fld, ERR_BAD_VALUE, f"want a string, not {_kind(v)}")
        return "", False

    def uint(self, fld: str, v: Any, bits: int) -> tuple[int, bool]:
        if v is _ABSENT:
            return 0, False
        top = (1 << bits) - 1
        if isinstance(v, _Num) and v.isdigit() and v.isascii() and int(v) <= top:
            return int(v), True
        if not isinstance(v, _Num):
            what = "a whole number 0..65535" if bits == 16 else "a whole number"
            self.fail(fld, ERR_BAD_VALUE, f"want {what}, not {_kind(v)}")
        else:
            self.fail(fld, ERR_BAD_VALUE, f"{quote_short(str(v))}: want a whole number 0..{top}")
        return 0, False

    def boolean(self, fld: str, v: Any) -> bool:
        if v is _ABSENT:
            return False
        if isinstance(v, bool):
            return v
        self.fail(fld, ERR_BAD_VALUE, f"want true or false, not {_kind(v)}")
        return False

    def list(self, fld: str, v: Any) -> tuple[list[str], bool]:
        if v is _ABSENT:
            return [], False
        if not isinstance(v, list) or not all(x is None or (isinstance(x, str) and not isinstance(x, _Num)) for x in v):
            self.fail(fld, ERR_BAD_VALUE, "want a list of strings")
            return [], False
        return ["" if x is None else str(x) for x in v], True

    def measurement(self, fld: str, v: Any, size: int, zero_why: str) -> bytes | None:
        s, ok = self.text(fld, v, True)
        if not ok:
            return None
        want = f"want {2 * size} hex digits ({size} bytes)"
        if s.strip() == "":
            self.fail(fld, ERR_BAD_MEASUREMENT, "empty: " + want + "; an empty measurement is never a wildcard")
            return None
        h = s.strip()
        h = h[2:] if h.startswith("0x") else h
        h = h[2:] if h.startswith("0X") else h
        try:
            if not h.isascii():
                raise ValueError
            raw = bytes.fromhex(h) if len(h) % 2 == 0 and " " not in h else None
        except ValueError:
            raw = None
        if raw is None or any(c.isspace() for c in h):
            self.fail(fld, ERR_BAD_MEASUREMENT, f"{quote_short(s)} is not hex: {want}")
            return None
        if len(raw) != size:
            self.fail(fld, ERR_BAD_MEASUREMENT, f"{quote_short(s)} is {len(raw)} bytes: {want}")
            return None
        if zero_why and not any(raw):
            self.fail(fld, ERR_BAD_MEASUREMENT, zero_why)
            return None
        return raw


_ZERO_PLACEHOLDER = "all zeros: a placeholder, not a measurement"
_ZERO_RTMR = "all zeros: an RTMR nothing was measured into; it pins no code"
_ZERO_HOST = "all zeros: the value of every TD whose host set none; it selects nothing — leave it out"
_TDX_ZERO = {
    "mr_td": _ZERO_PLACEHOLDER,
    "rtmr0": _ZERO_RTMR,
    "rtmr1": _ZERO_RTMR,
    "rtmr2": _ZERO_RTMR,
    "rtmr3": "all zeros: the value of every TD whose guest never extended RTMR3; it selects nothing — leave it out",
    "mr_config_id": _ZERO_HOST,
    "mr_owner": _ZERO_HOST,
    "mr_owner_config": _ZERO_HOST,
    "mr_servicetd": "all zeros: no service TD is bound, which is the default; leave it out",
}
SGX_FIELDS = ("mr_enclave", "mr_signer", "isv_prod_id", "min_isv_svn", "config_id", "min_config_svn")
TDX_FIELDS = (
    "mr_td",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "mr_config_id",
    "mr_owner",
    "mr_owner_config",
    "mr_servicetd",
    "allow_sept_ve",
)
_APP_FIELDS = (
    "id",
    "tee",
    "runtime",
    *SGX_FIELDS,
    *TDX_FIELDS,
    "tcb_statuses",
    "advisory_ids",
    "min_tcb_evaluation_data_number",
    "binding",
    "allow_debug",
    "store_token",
    "secrets",
)
_TOP_FIELDS = ("allow_simulated", "min_tcb_evaluation_data_number", "apps")


def _go_type(v: Any) -> str:
    """The JSON type name Go's json.UnmarshalTypeError shows."""
    if isinstance(v, _Num):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, list):
        return "array"
    return "object"


def _sgx_selector(r: _Reader, f: _Obj) -> SGXSelector:
    mr_enclave = r.measurement("mr_enclave", f.get("mr_enclave"), 32, _ZERO_PLACEHOLDER)
    mr_signer = r.measurement("mr_signer", f.get("mr_signer"), 32, _ZERO_PLACEHOLDER)
    config_id = r.measurement("config_id", f.get("config_id"), 64, "")
    prod, has_prod = r.uint("isv_prod_id", f.get("isv_prod_id"), 16)
    min_svn, _ = r.uint("min_isv_svn", f.get("min_isv_svn"), 16)
    min_cfg, _ = r.uint("min_config_svn", f.get("min_config_svn"), 16)
    if not f.has("mr_enclave") and not f.has("mr_signer"):
        r.fail(
            "mr_enclave",
            ERR_NO_SELECTOR,
            "an sgx app needs mr_enclave and/or mr_signer; without them it would match any enclave",
        )
    elif not f.has("mr_enclave") and not f.has("isv_prod_id"):
        r.fail("isv_prod_id", ERR_MISSING_FIELD, "required when mr_signer stands alone: one signer signs many enclaves")
    return SGXSelector(
        mr_enclave=mr_enclave,
        mr_signer=mr_signer,
        isv_prod_id=prod if has_prod else None,
        min_isv_svn=min_svn,
        config_id=config_id,
        min_config_svn=min_cfg,
    )


def _tdx_selector(r: _Reader, f: _Obj) -> TDXSelector:
    def m(name: str) -> bytes | None:
        return r.measurement(name, f.get(name), 48, _TDX_ZERO[name])

    mr_td, mr_config_id, mr_owner, mr_owner_config, mr_servicetd = (
        m("mr_td"),
        m("mr_config_id"),
        m("mr_owner"),
        m("mr_owner_config"),
        m("mr_servicetd"),
    )
    allow_sept_ve = r.boolean("allow_sept_ve", f.get("allow_sept_ve"))
    rtmr = (m("rtmr0"), m("rtmr1"), m("rtmr2"), m("rtmr3"))
    sel = TDXSelector(
        mr_td=mr_td,
        rtmr=rtmr,
        mr_config_id=mr_config_id,
        mr_owner=mr_owner,
        mr_owner_config=mr_owner_config,
        mr_servicetd=mr_servicetd,
        allow_sept_ve=allow_sept_ve,
    )
    if not f.has("mr_td"):
        r.fail("mr_td", ERR_NO_SELECTOR, "a tdx app needs mr_td; without it it would match any trust domain")
        return sel
    # MRTD measures only the TD's virtual firmware and RTMR0 the firmware's
    # configuration (ACPI tables, secure-boot variables), both of which a
    # cloud gives every tenant of an instance type alike; the kernel is
    # measured into RTMR1 and its command line and initrd into RTMR2 (by the
    # firmware on direct boot, by grub otherwise). MRCONFIGID, MROWNER and
    # MROWNERCONFIG are chosen by the host, RTMR3 by the guest at run time.
    missing = [n for n in ("rtmr1", "rtmr2") if not f.has(n)]
    if missing:
        named = [n for n in ("rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id", "mr_owner", "mr_owner_config") if f.has(n)]
        has = "it names mr_td and " + ", ".join(named) if named else "it names only mr_td"
        r.fail(
            ", ".join(missing),
            ERR_NO_SELECTOR,
            f"a tdx app must pin the TD's code: mr_td, rtmr1 and rtmr2 are required ({has}; missing {' and '.join(missing)}). "
            "mr_td measures only the TD firmware, which other tenants share; rtmr0 measures the firmware's configuration, "
            "which the VMM gives every TD of an instance type; "
            "rtmr1 measures the OS loader and kernel, rtmr2 the kernel command line and initrd: without both, the same firmware "
            "boots another kernel or the same kernel another user space (rdinit=, initrd). "
            "rtmr0, rtmr3, mr_config_id, mr_owner and mr_owner_config only narrow a match (the mr_ values are chosen by the host "
            "that launches the TD and rtmr3 is extended by the guest at run time). "
            "Add the rtmr values of your TD (asps quote inspect or asps whoami shows them)",
        )
    return sel


def _statuses(r: _Reader, v: Any) -> tuple[str, ...]:
    lst, ok = r.list("tcb_statuses", v)
    if not ok:
        return (STATUS_UP_TO_DATE,)
    if not lst:
        r.fail(
            "tcb_statuses",
            ERR_BAD_TCB_STATUS,
            "the list is empty, so the app could never match; leave it out to accept UpToDate only",
        )
    out: list[str] = []
    for s in lst:
        k = next((k for k in KNOWN_STATUSES if k.lower() == s.lower() and len(k) == len(s)), "")
        if not k:
            r.fail(
                "tcb_statuses", ERR_BAD_TCB_STATUS, f"{quote_short(s)} is not a TCB status (known: {', '.join(KNOWN_STATUSES)})"
            )
        elif k == "Revoked":
            r.fail("tcb_statuses", ERR_BAD_TCB_STATUS, "Revoked is never acceptable: the platform's keys are compromised")
        elif k not in out:
            out.append(k)
    return tuple(out)


def _advisories(r: _Reader, v: Any) -> tuple[str, ...]:
    lst, ok = r.list("advisory_ids", v)
    if not ok:
        return ()
    out: list[str] = []
    for s in lst:
        if not _valid_name(s):
            r.fail("advisory_ids", ERR_BAD_VALUE, f'{quote_short(s)}: want an advisory id such as INTEL-SA-00615, or "*"')
            continue
        if not any(o.lower() == s.lower() for o in out):
            out.append(s)
    return tuple(out)


def _secrets(r: _Reader, v: Any) -> None:
    """Validates secrets as Go does; a server policy reads none of them."""
    if v is _ABSENT:
        r.fail("secrets", ERR_NO_SECRETS, "every app names at least one secret it may read")
        return
    if not isinstance(v, _Obj):
        r.fail("secrets", ERR_BAD_VALUE, "want an object of secret name: store reference")
        return
    if not v.pairs:
        r.fail("secrets", ERR_NO_SECRETS, "the object is empty")
        return
    for n, ref in sorted(v.pairs, key=lambda p: p[0].encode("utf-8", "surrogateescape")):
        if not _valid_name(n):
            r.fail("secrets", ERR_BAD_VALUE, f"secret name {quote_short(n)}: 1 to 256 printable characters without blanks")
            continue
        s, ok = r.text("secrets." + n, ref, False)
        if ok and s.strip() == "":
            r.fail("secrets." + n, ERR_EMPTY_SECRET_REF, "give the store reference of this secret")


def _decode_app(raw: Any, index: int) -> tuple[App | None, list[LoadError]]:
    r = _Reader(index=index)
    if isinstance(raw, _Obj):
        probe = _id_text(raw.get("id"))
        if _valid_name(probe):
            r.app = probe
    placeholder = isinstance(raw, _Obj)  # Go adds placeholder secrets to mapping apps only
    if raw is None:
        raw = _Obj([])
    if not isinstance(raw, _Obj):
        return None, [LoadError(ERR_BAD_VALUE, index=index, detail=f"an app must be an object, not {_go_type(raw)}")]
    for k, _ in raw.pairs:
        if k not in _APP_FIELDS:
            return None, [LoadError(ERR_UNKNOWN_FIELD, app=r.app, index=index, field=k)]
    app_id = ""
    if not raw.has("id"):
        r.fail("id", ERR_MISSING_FIELD, "every app needs an id")
    else:
        s, ok = r.text("id", raw.get("id"), True)
        if ok:
            if not _valid_name(s):
                r.fail("id", ERR_BAD_VALUE, f"{quote_short(s)}: an id is 1 to 256 printable characters without blanks")
            app_id = s
    tee, ok = r.text("tee", raw.get("tee"), False)
    app_tee = ""
    if not raw.has("tee"):
        r.fail("tee", ERR_MISSING_FIELD, 'want "sgx" or "tdx"')
    elif ok and tee in ("sgx", "tdx"):
        app_tee = tee
    elif ok:
        r.fail("tee", ERR_BAD_VALUE, f'{quote_short(tee)}: want "sgx" or "tdx"')
    sgx: SGXSelector | None = None
    tdx: TDXSelector | None = None
    if app_tee == "sgx":
        for n in TDX_FIELDS:
            if raw.has(n):
                r.fail(n, ERR_BAD_VALUE, "is a TDX selector; this app's tee is sgx")
        sgx = _sgx_selector(r, raw)
    elif app_tee == "tdx":
        for n in SGX_FIELDS:
            if raw.has(n):
                r.fail(n, ERR_BAD_VALUE, "is an SGX selector; this app's tee is tdx")
        tdx = _tdx_selector(r, raw)
    runtime, ok = r.text("runtime", raw.get("runtime"), False)
    if ok and (not _valid_name(runtime) or runtime.lower() != runtime):
        r.fail(
            "runtime",
            ERR_BAD_VALUE,
            f"{quote_short(runtime)}: want a lower-case runtime name as the attester reports it: gramine, occlum, tdx-guest, sgx-sdk, sim",
        )
    statuses = _statuses(r, raw.get("tcb_statuses"))
    advisories = _advisories(r, raw.get("advisory_ids"))
    min_eval, _ = r.uint("min_tcb_evaluation_data_number", raw.get("min_tcb_evaluation_data_number"), 32)
    binding = ""
    b, ok = r.text("binding", raw.get("binding"), False)
    if ok:
        if b in (BINDING_TCG_LABELLED, BINDING_TCG_NONCE):
            binding = b
        elif b != "any":
            r.fail(
                "binding",
                ERR_BAD_VALUE,
                f"{quote_short(b)}: want any (the default), {BINDING_TCG_LABELLED} or {BINDING_TCG_NONCE}",
            )
    allow_debug = r.boolean("allow_debug", raw.get("allow_debug"))
    tok, ok = r.text("store_token", raw.get("store_token"), False)
    if ok and tok.strip() == "":
        r.fail("store_token", ERR_BAD_VALUE, "is empty: leave it out to use the store's own credentials")
    if raw.has("secrets") or not placeholder:
        _secrets(r, raw.get("secrets"))
    # else: a server-policy app needs no secrets (Go adds a placeholder).
    if r.errs:
        return None, r.errs
    return (
        App(
            id=app_id,
            tee=app_tee,
            sgx=sgx,
            tdx=tdx,
            runtime=runtime,
            tcb_statuses=statuses,
            advisory_ids=advisories,
            allow_debug=allow_debug,
            binding=binding,
            min_tcb_evaluation_data_number=min_eval,
        ),
        [],
    )


def _decode_policy(tree: Any) -> Policy:
    if not isinstance(tree, _Obj):
        raise PolicyError([LoadError(ERR_SYNTAX, detail="a policy is an object with apps, not " + _kind(tree))])
    for k, _ in tree.pairs:
        if k not in _TOP_FIELDS:
            raise PolicyError([LoadError(ERR_UNKNOWN_FIELD, field=k)])
    r = _Reader()
    allow_simulated = r.boolean("allow_simulated", tree.get("allow_simulated"))
    min_eval, _ = r.uint("min_tcb_evaluation_data_number", tree.get("min_tcb_evaluation_data_number"), 32)
    apps_raw = tree.get("apps")
    raws: list[Any] = []
    if apps_raw is _ABSENT or apps_raw is None:
        r.fail("apps", ERR_MISSING_FIELD, "a policy lists its apps")
    elif not isinstance(apps_raw, list):
        r.fail("apps", ERR_BAD_VALUE, "want a list of apps")
    elif not apps_raw:
        r.fail("apps", ERR_MISSING_FIELD, "the list is empty: such a policy refuses everything")
    else:
        raws = apps_raw
    errs = list(r.errs)
    ids: dict[str, int] = {}
    apps: list[App] = []
    for i, raw in enumerate(raws):
        a, app_errs = _decode_app(raw, i + 1)
        errs.extend(app_errs)
        if a is None or not a.id:
            continue
        key = a.id.lower()
        if key in ids:
            errs.append(
                LoadError(
                    ERR_DUPLICATE_ID,
                    app=a.id,
                    index=i + 1,
                    field="id",
                    detail=f"app #{ids[key]} has the same id (ids are compared ignoring case)",
                )
            )
            continue
        ids[key] = i + 1
        apps.append(dataclasses.replace(a, min_tcb_evaluation_data_number=max(a.min_tcb_evaluation_data_number, min_eval)))
    if errs:
        raise PolicyError(errs)
    return Policy(apps=tuple(apps), allow_simulated=allow_simulated, min_tcb_evaluation_data_number=min_eval)


def parse(data: bytes | str, fmt: str = "") -> Policy:
    """Parse and validate a server policy document (YAML or JSON; ``fmt`` "json", "yaml", "yml" or "" to sniff)."""
    b = data.encode() if isinstance(data, str) else bytes(data)
    if len(b) > MAX_FILE_SIZE:
        raise PolicyError(f"{ERR_SERVER_POLICY}: larger than {MAX_FILE_SIZE} bytes")
    if b.startswith(b"\xef\xbb\xbf"):
        b = b[3:]
    text = b.decode("utf-8", "replace")
    f = fmt.lower()
    if f not in ("json", "yaml", "yml", ""):
        raise PolicyError(f"policy: {ERR_UNKNOWN_FORMAT} {quote_short(fmt)} (want json or yaml)", reason=ERR_UNKNOWN_FORMAT)
    if f == "":
        f = "json" if text.lstrip(" \t\r\n")[:1] in ("{", "[") else "yaml"
    tree = _json_tree(text) if f == "json" else _yaml_tree(text)
    try:
        _check_keys(tree, "", False, 0)
    except _KeyError as e:
        raise PolicyError([_attribute_to_app(tree, e)]) from None
    return _decode_policy(tree)


def to_tree(v: Any) -> Any:
    """A Python value (str, int, bool, bytes as hex, list, dict) as a document node."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return _Num(str(v))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, str):
        return str(v)
    if isinstance(v, dict):
        return _Obj([(str(k), to_tree(x)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return [to_tree(x) for x in v]
    return str(v)


def parse_tree(doc: dict[str, Any]) -> Policy:
    """Validate a policy given as Python values (what the ServerPolicy keywords build)."""
    tree = to_tree(doc)
    try:
        _check_keys(tree, "", False, 0)
    except _KeyError as e:
        raise PolicyError([_attribute_to_app(tree, e)]) from None
    return _decode_policy(tree)


# ---------------------------------------------------------------- matching


@dataclass(frozen=True)
class Claims:
    """What a verified server quote shows (Go: claims.Claims, the fields a policy reads)."""

    tee: str
    tcb_status: str
    debug: bool = False
    simulated: bool = False
    runtime: str = ""
    binding: str = ""
    advisory_ids: tuple[str, ...] = ()
    tcb_eval_data_number: int = 0
    # SGX
    mr_enclave: bytes = b""
    mr_signer: bytes = b""
    isv_prod_id: int = 0
    isv_svn: int = 0
    config_id: bytes = b""
    config_svn: int = 0
    # TDX
    mr_td: bytes = b""
    rtmr: tuple[bytes, ...] = ()
    mr_config_id: bytes = b""
    mr_owner: bytes = b""
    mr_owner_config: bytes = b""
    mr_servicetd: bytes = b""
    td_attributes: bytes = b""


@dataclass(frozen=True)
class Mismatch:
    field: str
    seen: str
    expected: str


class Denial(Exception):
    """A server the policy refuses (Go: *policy.Denial); ``str`` is Go's message."""

    def __init__(self, reason: str, detail: str = "", app: str = "", mismatches: tuple[Mismatch, ...] = ()) -> None:
        self.reason, self.detail, self.app, self.mismatches = reason, detail, app, mismatches
        super().__init__("policy: " + reason + (": " + detail if detail else ""))


def _short_hex(s: str) -> str:
    if len(s) <= 20 or s.strip("0123456789abcdef") != "":
        return s
    return s[:16] + "…"


def _or_none(s: str) -> str:
    return s or "(none)"


def _diff(a: App, c: Claims, out: list[Mismatch] | None) -> tuple[int, int]:
    n = main = 0

    def add(fld: str, seen: str, expected: str) -> None:
        nonlocal n, main
        n += 1
        if fld in ("mr_enclave", "mr_signer", "mr_td"):
            main += 1
        if out is not None:
            out.append(Mismatch(fld, seen, expected))

    def hx(fld: str, want: bytes | None, got: bytes) -> None:
        if want is not None and want != got:
            add(fld, _or_none(got.hex()), want.hex())

    def atleast(fld: str, want: int, got: int) -> None:
        if got < want:
            add(fld, str(got), f">= {want}")

    if a.runtime and c.runtime != a.runtime:
        add("runtime", go_quote(c.runtime) if c.runtime else "(none)", go_quote(a.runtime))
    if a.sgx is not None:
        s = a.sgx
        hx("mr_enclave", s.mr_enclave, c.mr_enclave)
        hx("mr_signer", s.mr_signer, c.mr_signer)
        if s.isv_prod_id is not None and c.isv_prod_id != s.isv_prod_id:
            add("isv_prod_id", str(c.isv_prod_id), str(s.isv_prod_id))
        atleast("isv_svn", s.min_isv_svn, c.isv_svn)
        hx("config_id", s.config_id, c.config_id)
        atleast("config_svn", s.min_config_svn, c.config_svn)
    elif a.tdx is not None:
        t = a.tdx
        hx("mr_td", t.mr_td, c.mr_td)
        rtmr = tuple(c.rtmr) + (b"",) * (4 - len(c.rtmr))
        for i in range(4):
            hx(f"rtmr{i}", t.rtmr[i], rtmr[i])
        hx("mr_config_id", t.mr_config_id, c.mr_config_id)
        hx("mr_owner", t.mr_owner, c.mr_owner)
        hx("mr_owner_config", t.mr_owner_config, c.mr_owner_config)
    return n, main


_TD_DEBUG = 1 << 0
_TD_TUD_RESERVED = 0xFE
_TD_LASS, _TD_SEPT_VE_DISABLE, _TD_MIGRATABLE, _TD_PKS, _TD_KL = 1 << 27, 1 << 28, 1 << 29, 1 << 30, 1 << 31
_TD_SEC_KNOWN = _TD_LASS | _TD_SEPT_VE_DISABLE | _TD_MIGRATABLE | _TD_PKS | _TD_KL
_TD_SEC = 0xFFFFFF00


def _bit_list(v: int) -> str:
    return ", ".join(str(i) for i in range(64) if v >> i & 1)


def _binding_rank(b: str) -> int:
    return {BINDING_REPORT_DATA: 1, BINDING_TCG: 2, BINDING_TCG_LABELLED: 3, BINDING_TCG_NONCE: 4}.get(b, 0)


def _td_gate(a: App, c: Claims) -> Denial | None:
    t = a.tdx
    assert t is not None
    if len(c.td_attributes) != 8:
        return Denial(DENY_BAD_CLAIMS, f"td_attributes is {len(c.td_attributes)} bytes, want 8", a.id)
    attrs = int.from_bytes(c.td_attributes, "little")
    seen = c.td_attributes.hex()
    if bits := attrs & _TD_TUD_RESERVED:
        return Denial(
            DENY_TD_ATTRIBUTE,
            f"td_attributes {seen} sets reserved TD-under-debug bit(s) {_bit_list(bits)}: a TD its host may debug is refused",
            a.id,
        )
    if bits := attrs & _TD_SEC & ~_TD_SEC_KNOWN:
        return Denial(
            DENY_TD_ATTRIBUTE,
            f"td_attributes {seen} sets reserved security bit(s) {_bit_list(bits)}, whose effect on the TD's isolation is unknown",
            a.id,
        )
    if not attrs & _TD_SEPT_VE_DISABLE and not t.allow_sept_ve:
        return Denial(
            DENY_TD_ATTRIBUTE,
            f"td_attributes {seen} lacks SEPT_VE_DISABLE (bit 28): the host can remove the TD's private pages and the TD "
            f"takes #VE exceptions it may mishandle; app {go_quote(a.id)} does not set allow_sept_ve",
            a.id,
        )
    if attrs & _TD_MIGRATABLE and (t.mr_servicetd is None or c.mr_servicetd != t.mr_servicetd):
        return Denial(
            DENY_TD_ATTRIBUTE,
            f"td_attributes {seen} sets MIGRATABLE (bit 29): a migration TD can export the TD's memory and state; "
            f"app {go_quote(a.id)} admits that only when the TD is bound to the migration TD it names in mr_servicetd "
            f"(bound: {_or_none(c.mr_servicetd.hex())})",
            a.id,
        )
    if any(c.mr_servicetd):
        if t.mr_servicetd is None:
            return Denial(
                DENY_SERVICE_TD,
                f"mr_servicetd {c.mr_servicetd.hex()} is not zero: a bound service TD (a migration TD, say) can read the TD's state; "
                f"app {go_quote(a.id)} names no mr_servicetd",
                a.id,
            )
        if c.mr_servicetd != t.mr_servicetd:
            return Denial(
                DENY_SERVICE_TD,
                f"mr_servicetd {c.mr_servicetd.hex()} is not the service TD app {go_quote(a.id)} names ({_short_hex(t.mr_servicetd.hex())})",
                a.id,
            )
    return None


def _gate(a: App, c: Claims) -> Denial | None:
    if c.debug and not a.allow_debug:
        return Denial(
            DENY_DEBUG,
            f"the workload is a debug {c.tee} (its host can read its memory) and app {go_quote(a.id)} does not set allow_debug",
            a.id,
        )
    if a.binding and _binding_rank(c.binding) < _binding_rank(a.binding):
        hint = (
            "after the handshake the workload must send session evidence, a fresh quote over this connection's TLS exporter (ratls.NewSessionEvidence)"
            if a.binding == BINDING_TCG_NONCE
            else "an asps RA-TLS certificate in the TCG format with the asps-domain label (ratls.NewCertificate makes one)"
        )
        return Denial(
            DENY_BINDING,
            f"the evidence binds the key by {_or_none(c.binding)}; app {go_quote(a.id)} requires {a.binding} (binding): {hint}",
            a.id,
        )
    if c.tee == "tdx" and a.tdx is not None and (d := _td_gate(a, c)) is not None:
        return d
    if c.tcb_status not in a.tcb_statuses:
        return Denial(
            DENY_TCB_STATUS,
            f"tcb status {quote_short(c.tcb_status)} not allowed (app {go_quote(a.id)} accepts {', '.join(a.tcb_statuses)})",
            a.id,
        )
    if a.min_tcb_evaluation_data_number > 0 and c.tcb_eval_data_number < a.min_tcb_evaluation_data_number:
        seen = str(c.tcb_eval_data_number) if c.tcb_eval_data_number else "(none: the TCB was not evaluated)"
        return Denial(
            DENY_TCB_EVALUATION,
            f"tcb evaluation data number {seen} is below the {a.min_tcb_evaluation_data_number} app {go_quote(a.id)} requires "
            "(min_tcb_evaluation_data_number): the platform was judged with older collateral",
            a.id,
        )
    if "*" in a.advisory_ids:
        return None
    for adv in c.advisory_ids:
        if not any(t.lower() == adv.lower() for t in a.advisory_ids):
            tolerated = ", ".join(a.advisory_ids) if a.advisory_ids else "none"
            return Denial(
                DENY_ADVISORY,
                f"advisory {quote_short(adv)} not tolerated (app {go_quote(a.id)} tolerates {tolerated})",
                a.id,
            )
    return None


def match(p: Policy, c: Claims) -> App:
    """The first app whose selectors all hold for c; otherwise raise :class:`Denial` (Go: Policy.Match)."""
    if c.tee not in ("sgx", "tdx"):
        raise Denial(DENY_BAD_CLAIMS, f"unknown TEE {quote_short(c.tee)}")
    if c.simulated and not p.allow_simulated:
        raise Denial(DENY_SIMULATED, "the evidence chains to a simulator root and the policy does not set allow_simulated")
    gated: Denial | None = None
    closest: App | None = None
    best = (0, 0)
    for a in p.apps:
        if a.tee != c.tee:
            continue
        d = _diff(a, c, None)
        if d[0] == 0:
            denial = _gate(a, c)
            if denial is None:
                return a
            gated = gated or denial
            continue
        if closest is None or d < best:
            closest, best = a, d
    if gated is not None:
        raise gated
    if closest is None:
        raise Denial(DENY_TEE_MISMATCH, f"the workload is {quote_short(c.tee)} and the policy has no {quote_short(c.tee)} app")
    ms: list[Mismatch] = []
    _diff(closest, c, ms)
    detail = "; ".join(
        f"{m.field} {m.seen} not allowed (app {go_quote(closest.id)} expects {_short_hex(m.expected)})" for m in ms
    )
    raise Denial(DENY_NO_MATCHING_APP, detail, closest.id, tuple(ms))
