"""What tools/validate_change_events.py and tools/validate_openlineage.py
share: reading JSON lines, loading JSON Schemas, turning jsonschema's errors
into (JSON Pointer, message) failures, the result and the command line

    VALIDATOR [FILE] [--max-failures N]

(FILE, or stdin when it is absent or "-"; the first N failures as
"line L: POINTER: MESSAGE", then a one-line summary; exit status 1 on any
failure). Not a script of its own.
"""

import argparse
import json
import sys

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


def load_schema(path):
    """A schema file, checked against its metaschema (draft 2020-12)."""
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    return schema


# --- messages ----------------------------------------------------------------

def pointer(parts):
    """RFC 6901 JSON Pointer of a path."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shown(value):
    """How a message names a value too big to repeat ("an object", "an
    array", "null"); None for a scalar, which jsonschema's message shows."""
    return {"object": "an object", "array": "an array", "null": "null"}.get(json_type(value))


def message(err):
    """jsonschema's message, without a repr of a whole object or array."""
    big = shown(err.instance)
    if big and err.validator == "type":
        return f"{big} is not allowed here (expected type {err.validator_value!r})"
    if big and err.validator in ("const", "enum"):
        return f"{big} is not allowed here (expected {err.validator_value!r})"
    return err.message


def schema_failures(validator, instance, prefix=(), message=message, rule_title=None):
    """(JSON Pointer, message) for each error of an instance found at the path
    prefix, in document order. An error with sub-errors (anyOf, oneOf) names
    the best of them; rule_title(schema, schema path), when given, names the
    rule an error broke."""
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        msg = message(err)
        if err.context:
            inner = best_match(err.context)
            msg = f"{msg} ({pointer(list(prefix) + list(inner.absolute_path))}: {message(inner)})"
        title = rule_title(validator.schema, err.absolute_schema_path) if rule_title else None
        if title:
            msg = f"{msg} [rule: {title}]"
        out.append((pointer(list(prefix) + list(err.absolute_path)), msg))
    return out


# --- lines -------------------------------------------------------------------

class Result:
    """Lines read and failures; a validator's subclass counts more and writes
    the summary."""

    def __init__(self):
        self.count = 0      # non-blank lines
        self.failures = []  # (line, pointer, message)

    @property
    def ok(self):
        return not self.failures

    def status(self):
        return "OK" if self.ok else f"{len(self.failures)} failure(s)"


def json_lines(lines, res):
    """(value, fail) for each non-blank line that is JSON, counted in res;
    fail(pointer, message) records a failure of that line. A line that is
    not JSON is a failure and is not yielded."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        res.count += 1

        def fail(where, msg, _n=lineno):
            res.failures.append((_n, where, msg))

        try:
            value = json.loads(line)
        except ValueError as e:
            fail("", f"not JSON: {e}")
            continue
        yield value, fail


def main(validate_lines, description, argv=None):
    """The command line; validate_lines(iterable of lines) returns a Result."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("file", nargs="?", default="-", help="JSON-lines file (default: stdin)")
    ap.add_argument("--max-failures", type=int, default=10, help="failures to print (default 10)")
    args = ap.parse_args(argv)

    if args.file == "-":
        res = validate_lines(sys.stdin)
    else:
        with open(args.file, encoding="utf-8") as f:
            res = validate_lines(f)

    for lineno, where, msg in res.failures[: args.max_failures]:
        print(f"line {lineno}: {where or '/'}: {msg}")
    if len(res.failures) > args.max_failures:
        print(f"... and {len(res.failures) - args.max_failures} more")
    print(res.summary())
    return 0 if res.ok else 1
