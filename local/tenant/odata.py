"""OData query options as Graph applies them: $filter (a practical subset), $select, $top, $count, paging.

https://learn.microsoft.com/graph/query-parameters and, for what needs ConsistencyLevel: eventual plus $count,
https://learn.microsoft.com/graph/aad-advanced-queries
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .errors import bad_request

DEFAULT_PAGE = 100
Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>\d{4}-\d{2}-\d{2}T[\d:.]+Z?)|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>\(|\)|,|:)|(?P<word>[A-Za-z_][\w/.@-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise bad_request(f"Invalid filter clause: unexpected text at '{text[position : position + 20]}'.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _path(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class _Parser:
    """Recursive descent over: or / and / not, eq ne gt ge lt le, in (...), startswith(), any(x: x/p eq v)."""

    def __init__(self, tokens: list[tuple[str, str]], lambda_var: str | None = None):
        self.tokens = tokens
        self.i = 0
        self.lambda_var = lambda_var
        self.advanced = False  # uses an operator only advanced queries allow (ne, not, endswith, null compare)

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

    def factor(self) -> Predicate:
        if self.peek("not"):
            self.take()
            self.advanced = True
            inner = self.factor()
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
            self.take("(")
            prop = self.property_path(self.take()[1])
            self.take(",")
            value = self.literal()
            self.take(")")
            if lowered == "endswith":
                self.advanced = True
            test = str.startswith if lowered == "startswith" else str.endswith
            return lambda item: isinstance(v := prop(item), str) and test(v.lower(), str(value).lower())
        if self.peek("/") is None and "/" in word and word.lower().endswith(("/any", "/all")):
            return self.lambda_clause(word)
        prop = self.property_path(word)
        op = self.take()[1].lower()
        if op == "in":
            self.take("(")
            values = [self.literal()]
            while self.peek(","):
                self.take(",")
                values.append(self.literal())
            self.take(")")
            lowered_values = [v.lower() if isinstance(v, str) else v for v in values]
            return lambda item: _norm(prop(item)) in lowered_values
        value = self.literal()
        if op == "ne" or value is None:
            self.advanced = True
        return _compare(prop, op, value)

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
        inner = _Parser(self.tokens[start : self.i - 1], lambda_var=variable)
        predicate = inner.parse()
        self.advanced |= inner.advanced
        quantifier = any if kind.lower() == "any" else all

        def test(item: dict[str, Any]) -> bool:
            values = _path(item, collection) or []
            return quantifier(predicate({"$it": v}) for v in values)

        return test

    def property_path(self, word: str) -> Callable[[dict[str, Any]], Any]:
        if self.lambda_var and (word == self.lambda_var or word.startswith(self.lambda_var + "/")):
            rest = word[len(self.lambda_var) + 1 :]
            return lambda item: item["$it"] if not rest else _path(item["$it"], rest)
        return lambda item: _path(item, word)

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "dt":
            return value
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        if kind == "word" and re.fullmatch(r"[0-9a-fA-F-]{36}", value):
            return value
        raise bad_request(f"Invalid filter clause: '{value}' is not a literal.")


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(prop: Callable, op: str, value: Any) -> Predicate:
    def test(item: dict[str, Any]) -> bool:
        actual = prop(item)
        a, b = _norm(actual), _norm(value)
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        if a is None or b is None:
            return False
        try:
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
        except KeyError:
            raise bad_request(f"Invalid filter clause: unsupported operator '{op}'.") from None
        except TypeError:
            return False

    return test


def parse_filter(text: str | None) -> tuple[Predicate | None, bool]:
    """A predicate for $filter (or None), and whether the filter needs advanced-query capabilities."""
    if not text:
        return None, False
    parser = _Parser(_tokens(text))
    return parser.parse(), parser.advanced


def select(item: dict[str, Any], fields: str | None, allowed: set[str] | None = None) -> dict[str, Any]:
    """$select: only the named properties (plus @odata.type and id), 400 for an unknown property."""
    if not fields:
        return item
    names = [f.strip() for f in fields.split(",") if f.strip()]
    if allowed is not None:
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise bad_request(f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.user'.")
    out = {k: item[k] for k in ("@odata.type",) if k in item}
    for name in names:
        out[name] = item.get(name)
    return out


def page(
    request: web.Request, items: list[dict[str, Any]], context: str, *, top_max: int = 999, count: int | None = None
) -> web.Response:
    """One page of `items` with @odata.nextLink ($skiptoken is opaque) and @odata.count when asked for."""
    try:
        top = int(request.query.get("$top", DEFAULT_PAGE))
    except ValueError:
        raise bad_request("Invalid value for $top.") from None
    if not 1 <= top <= top_max:
        raise bad_request(f"Invalid page size specified: '{top}'. Must be between 1 and {top_max} inclusive.")
    offset = 0
    token = request.query.get("$skiptoken")
    if token:
        try:
            offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
        except (ValueError, KeyError):
            raise bad_request("Invalid $skiptoken.") from None
    body: dict[str, Any] = {"@odata.context": context}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = items[offset : offset + top]
    if offset + top < len(items):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = base64.urlsafe_b64encode(json.dumps({"o": offset + top}).encode()).decode()
        body["@odata.nextLink"] = str(request.url.with_query(query))
    return web.json_response(body)
