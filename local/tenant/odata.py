"""OData query options as Graph applies them: $filter (a practical subset), $select, $top, $count, paging.

Reused by every tenant module that lists things (directory, reports, audits, EM, bot). Pages followed:
- https://learn.microsoft.com/graph/query-parameters and https://learn.microsoft.com/graph/filter-query-parameter
- https://learn.microsoft.com/graph/aad-advanced-queries (what needs ConsistencyLevel: eventual plus $count=true, and
  the errors Graph gives without them)
- https://learn.microsoft.com/graph/paging (@odata.nextLink with an opaque $skiptoken; follow it as is)
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import GraphError, bad_request

DEFAULT_PAGE = 100
Predicate = Callable[[dict[str, Any]], bool]

# A property's filter support, as the advanced-queries tables give it: operator -> "default" | "advanced".
# Operators: eq ne not ge le in startsWith endsWith null any. ge/le also stand for gt/lt.
Support = Mapping[str, str]
DEFAULT = "default"
ADVANCED = "advanced"

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-]))"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>\(|\)|,|:)|(?P<word>[A-Za-z_$][\w/.@$-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if not text[position:].strip():
                break
            raise bad_request(f"Invalid filter clause: unexpected text at '{text[position : position + 20]}'.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _path(item: Mapping[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("/"):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class Clause:
    """One property use in a filter: the property path (lambda members as `collection/member`) and operator."""

    path: str
    op: str


@dataclass
class Filter:
    """A parsed $filter: the predicate, every clause it uses, and whether it needs advanced query parameters
    under Graph's generic rules (ne, not, endsWith and null comparisons)."""

    predicate: Predicate
    clauses: list[Clause] = field(default_factory=list)
    advanced: bool = False

    def __call__(self, item: dict[str, Any]) -> bool:
        return self.predicate(item)


class _Parser:
    """Recursive descent over: or / and / not, eq ne gt ge lt le, in (...), startswith(), endswith(),
    any/all(x: x/p eq v)."""

    def __init__(self, tokens: list[tuple[str, str]], lambda_var: str | None = None, prefix: str = ""):
        self.tokens = tokens
        self.i = 0
        self.lambda_var = lambda_var
        self.prefix = prefix  # the collection path a lambda body's clauses belong to
        self.clauses: list[Clause] = []

    @property
    def advanced(self) -> bool:
        return any(c.op in ("ne", "not", "endsWith", "null") for c in self.clauses)

    def peek(self, value: str | None = None) -> tuple[str, str] | None:
        token = self.tokens[self.i] if self.i < len(self.tokens) else None
        if value is not None and (token is None or token[1].lower() != value):
            return None
        return token

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].lower() != value):
            raise bad_request(f"Invalid filter clause: expected '{value or 'more'}'.")
        self.i += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.peek() is not None:
            raise bad_request(f"Invalid filter clause: unexpected '{self.peek()[1]}'.")
        return predicate

    def expr(self) -> Predicate:
        left = self.term()
        while self.peek("or"):
            self.take()
            right = self.term()
            left = (lambda a, b: lambda item: a(item) or b(item))(left, right)
        return left

    def term(self) -> Predicate:
        left = self.factor()
        while self.peek("and"):
            self.take()
            right = self.factor()
            left = (lambda a, b: lambda item: a(item) and b(item))(left, right)
        return left

    def note(self, path: str, op: str) -> None:
        self.clauses.append(Clause(self.prefix + path if self.prefix else path, op))

    def factor(self) -> Predicate:
        if self.peek("not"):
            self.take()
            start = len(self.clauses)
            inner = self.factor()
            for clause in list(self.clauses[start:]):
                self.clauses.append(Clause(clause.path, "not"))
            return lambda item: not inner(item)
        if self.peek("("):
            self.take("(")
            inner = self.expr()
            self.take(")")
            return inner
        kind, word = self.take()
        if kind != "word":
            raise bad_request(f"Invalid filter clause: unexpected '{word}'.")
        lowered = word.lower()
        if lowered in ("startswith", "endswith"):
            return self.string_function(lowered)
        if "/" in word and lowered.endswith(("/any", "/all")):
            return self.lambda_clause(word)
        name, prop = self.property_path(word)
        op = self.take()[1].lower()
        if op == "in":
            return self.in_clause(name, prop)
        if op not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise bad_request(f"Invalid filter clause: unsupported operator '{op}'.")
        value = self.literal()
        self.note(name, {"gt": "ge", "lt": "le"}.get(op, op))
        if value is None:
            self.note(name, "null")
        return _compare(prop, op, value)

    def string_function(self, lowered: str) -> Predicate:
        self.take("(")
        name, prop = self.property_path(self.take()[1])
        self.take(",")
        value = self.literal()
        self.take(")")
        self.note(name, "startsWith" if lowered == "startswith" else "endsWith")
        test = str.startswith if lowered == "startswith" else str.endswith
        return lambda item: isinstance(v := prop(item), str) and test(v.lower(), str(value).lower())

    def in_clause(self, name: str, prop: Callable[[dict[str, Any]], Any]) -> Predicate:
        self.take("(")
        values = [self.literal()]
        while self.peek(","):
            self.take(",")
            values.append(self.literal())
        self.take(")")
        self.note(name, "in")
        lowered_values = [_norm(v) for v in values]
        return lambda item: _norm(prop(item)) in lowered_values

    def lambda_clause(self, word: str) -> Predicate:
        collection, kind = word.rsplit("/", 1)
        self.take("(")
        variable = self.take()[1]
        self.take(":")
        depth, start = 1, self.i
        while depth:
            token = self.take()
            depth += token[1] == "("
            depth -= token[1] == ")"
        inner = _Parser(self.tokens[start : self.i - 1], lambda_var=variable, prefix=collection + "/")
        predicate = inner.parse()
        self.note(collection, kind.lower())
        self.clauses.extend(inner.clauses)
        quantifier = any if kind.lower() == "any" else all

        def test(item: dict[str, Any]) -> bool:
            values = _path(item, collection) or []
            return quantifier(predicate({"$it": v}) for v in values)

        return test

    def property_path(self, word: str) -> tuple[str, Callable[[dict[str, Any]], Any]]:
        """The clause name of a property (a lambda member is named by its own path) and its accessor."""
        if self.lambda_var and (word == self.lambda_var or word.startswith(self.lambda_var + "/")):
            rest = word[len(self.lambda_var) + 1 :]
            return rest, (lambda item: item["$it"] if not rest else _path(item["$it"], rest))
        return word, (lambda item: _path(item, word))

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind in ("dt", "guid"):
            return value
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        raise bad_request(f"Invalid filter clause: '{value}' is not a literal.")


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(prop: Callable, op: str, value: Any) -> Predicate:
    def test(item: dict[str, Any]) -> bool:
        actual = prop(item)
        if isinstance(actual, list) and op in ("eq", "ne"):
            # Graph compares a string collection (businessPhones, otherMails) by membership.
            found = _norm(value) in [_norm(a) for a in actual]
            return found if op == "eq" else not found
        a, b = _norm(actual), _norm(value)
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        if a is None or b is None:
            return False
        try:
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
        except TypeError:
            return False

    return test


def parse(text: str | None) -> Filter | None:
    """The parsed $filter, or None when there is none."""
    if not text or not text.strip():
        return None
    parser = _Parser(_tokens(text))
    predicate = parser.parse()
    return Filter(predicate, parser.clauses, parser.advanced)


def parse_filter(text: str | None) -> tuple[Predicate | None, bool]:
    """A predicate for $filter (or None), and whether the filter needs advanced-query capabilities."""
    parsed = parse(text)
    return (parsed.predicate, parsed.advanced) if parsed else (None, False)


# --- advanced queries ----------------------------------------------------------------------------------


def consistency_eventual(request: web.Request) -> bool:
    return request.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"


def count_requested(request: web.Request) -> bool:
    return request.query.get("$count", "").strip().lower() == "true"


def advanced_query(request: web.Request) -> bool:
    """Both advanced query parameters: the ConsistencyLevel: eventual header and $count=true."""
    return consistency_eventual(request) and count_requested(request)


def unsupported_property(path: str, resource: str) -> GraphError:
    """Graph's 400 for a clause the property does not support (or supports only in advanced queries)."""
    return bad_request(
        f"Unsupported or invalid query filter clause specified for property '{path}' of resource '{resource}'.",
        code="Request_UnsupportedQuery",
    )


def operator_needs_advanced(op: str) -> GraphError:
    """The documented 400 for an operator used without the advanced query parameters (aad-advanced-queries)."""
    return bad_request(
        f"Operator '{op}' is not supported because the required parameters might be missing. Try adding $count=true "
        "query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries "
        "for more information",
        code="Request_UnsupportedQuery",
    )


def check_filter(
    parsed: Filter | None, support: Mapping[str, Support], resource: str, *, advanced: bool, directory: bool = True
) -> None:
    """Raise Graph's 400 unless every clause is supported for its property, in this (advanced or not) query.

    `support` maps a property path (lambda members as `collection/member`) to its operators. Properties that are
    missing do not support $filter. For directory objects ne, not and endsWith are operators of advanced queries
    everywhere; a property's eq may itself be advanced-only (mobilePhone, onPremisesExtensionAttributes).
    Outside the directory (`directory=False`: reports, audits) there are no advanced queries and only the listed
    operators work.
    """
    if parsed is None:
        return
    for clause in parsed.clauses:
        allowed = _support_for(support, clause.path)
        level = allowed.get(clause.op) if allowed is not None else None
        if directory and level is None and clause.op in ("ne", "not") and allowed and allowed.get("eq"):
            # "All properties that support the eq operator also support the ne or not operators" (advanced only).
            level = ADVANCED
        if level is None:
            raise unsupported_property(clause.path, resource)
        if level == ADVANCED and not advanced:
            if clause.op in ("ne", "not", "endsWith"):
                raise operator_needs_advanced(clause.op)
            raise unsupported_property(clause.path, resource)


def _support_for(support: Mapping[str, Support], path: str) -> Support | None:
    if path in support:
        return support[path]
    head = path.split("/", 1)[0]
    # A sub-property (onPremisesExtensionAttributes/extensionAttribute1) inherits its complex property's row.
    return support.get(head + "/*")


# --- $select, $top, paging ------------------------------------------------------------------------------


def select_fields(fields: str | None) -> list[str]:
    return [f.strip() for f in (fields or "").split(",") if f.strip()]


def select(
    item: dict[str, Any], fields: str | None, allowed: set[str] | None = None, type_name: str = "user"
) -> dict[str, Any]:
    """$select: only the named properties (plus @odata.type), 400 for an unknown property.

    The docs give no example of the error; Graph's OData layer answers an unknown property with 400 BadRequest
    "Parsing OData Select and Expand failed: Could not find a property named '…' on type 'microsoft.graph.…'."
    """
    names = select_fields(fields)
    if not names:
        return item
    if allowed is not None:
        unknown = [n for n in names if n not in allowed and n != "*"]
        if unknown:
            raise bad_request(
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{unknown[0]}' on type 'microsoft.graph.{type_name}'.",
                code="BadRequest",
            )
    if "*" in names:
        return item
    out = {k: item[k] for k in ("@odata.type",) if k in item}
    for name in names:
        out[name] = item.get(name)
    return out


def top(request: web.Request, top_max: int = 999, default: int = DEFAULT_PAGE) -> int:
    """The page size: $top (1..top_max) or the default."""
    raw = request.query.get("$top")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value '{raw}' for $top.") from None
    if not 1 <= value <= top_max:
        raise bad_request(f"Invalid page size specified: '{value}'. Must be between 1 and {top_max} inclusive.")
    return value


def _offset(request: web.Request) -> int:
    token = request.query.get("$skiptoken")
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))["o"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("Invalid $skiptoken.") from None
    if not isinstance(offset, int) or offset < 0:
        raise bad_request("Invalid $skiptoken.")
    return offset


def page(
    request: web.Request,
    items: list[dict[str, Any]],
    context: str,
    *,
    top_max: int = 999,
    count: int | None = None,
    default_size: int = DEFAULT_PAGE,
) -> web.Response:
    """One page of `items` with @odata.nextLink ($skiptoken is opaque) and, on the first page only,
    @odata.count when asked for (https://learn.microsoft.com/graph/paging; aad-advanced-queries)."""
    size = top(request, top_max, default_size)
    offset = _offset(request)
    body: dict[str, Any] = {"@odata.context": context}
    if count is not None and offset == 0:
        body["@odata.count"] = count
    body["value"] = items[offset : offset + size]
    if offset + size < len(items):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        token = base64.urlsafe_b64encode(json.dumps({"o": offset + size}).encode()).decode().rstrip("=")
        query["$skiptoken"] = token
        body["@odata.nextLink"] = str(request.url.with_query(query))
    return web.json_response(body)
