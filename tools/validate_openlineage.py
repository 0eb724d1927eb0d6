#!/usr/bin/env python3
"""Validates OpenLineage RunEvents (spec 2-0-2), as crates/mesh's
openlineage module writes them, against OpenLineage's published JSON Schema.

    validate_openlineage.py [FILE] [--max-failures N]

Reads JSON lines from FILE (or stdin when FILE is absent or "-"), one
RunEvent per line. The schemas are the files under
crates/mesh/schema/openlineage/ (OpenLineage's, verbatim, and UltraCore's
custom facets; see the README there), found by their "$id" in a
referencing.Registry: nothing is fetched from the network.

Each event is checked against the RunEvent definition its "schemaURL"
names, which must be https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent
(the one stored). The core schema checks a facet only as a BaseFacet
(_producer and _schemaURL), so each facet whose "_schemaURL" names a stored
schema is also checked against that schema, and against two rules the
schemas state but cannot enforce:

* the facet sits under the key its schema file declares for it
  (JobTypeJobFacet.json: "jobType"; UltracoreCausesRunFacet.json:
  "ultracore_causes");
* the facet is attached to the entity it extends: a RunFacet under
  run.facets, a JobFacet under job.facets, a DatasetFacet under a dataset's
  facets, an InputDatasetFacet / OutputDatasetFacet under inputFacets /
  outputFacets.

Facets of schemas not stored here (another producer's) are counted as
unchecked, not failed. Formats are asserted: uuid (runId, eventId),
date-time (RFC 3339, with a time zone) and uri (producer, _producer,
_schemaURL; an absolute URI, so a URN is one). One more rule the custom
facet states: every cause's topic is one of the run's input datasets.

Prints a one-line summary (events per eventType, facets checked and
unchecked); on any failure it first prints the first few failures (line
number, JSON Pointer of the failing element, message) and exits with
status 1.
"""

import re
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import urldefrag

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from any directory
sys.dont_write_bytecode = True  # no tools/__pycache__
import jsonlines_check as jlc  # noqa: E402

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "crates" / "mesh" / "schema" / "openlineage"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_URL = CORE_ID + "#/$defs/RunEvent"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")

# --- formats -----------------------------------------------------------------
# jsonschema asserts "uuid" itself; "date-time" and "uri" need packages that
# are not installed (rfc3339-validator, rfc3987), so they are checked here.

FORMATS = FormatChecker()

_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value):
    """RFC 3339 section 5.6 date-time: a time zone is required."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        raise ValueError("not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ss[.frac] and Z or +hh:mm)")
    # Range checks (month 13, 25:00, Feb 30); a leap second reads as :59.
    datetime.fromisoformat(value[:17] + min(value[17:19], "59") + value[19:].replace("z", "Z"))
    return True


_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:"                      # scheme
    r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"  # hier-part
    r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?"
    r"(?:#(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?")


@FORMATS.checks("uri")
def _is_uri(value):
    """RFC 3986 URI: a scheme, then only characters a URI may hold."""
    return not isinstance(value, str) or bool(_URI.fullmatch(value))


# --- schemas -----------------------------------------------------------------

def load_registry(schema_dir=SCHEMA_DIR):
    """Every stored schema, keyed by its $id."""
    registry = Registry()
    for path in sorted(Path(schema_dir).rglob("*.json")):
        schema = jlc.load_schema(path)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return registry


def _validator(registry, url):
    return Draft202012Validator({"$ref": url}, registry=registry, format_checker=FORMATS)


def _facet_info(registry, doc_id, fragment):
    """(keys the document declares for the definition, the core definition it
    extends) for a facet definition; the document's top-level "properties"
    map each facet key to its definition."""
    doc = registry.contents(doc_id)
    target = "#" + fragment
    keys = sorted(k for k, v in doc.get("properties", {}).items()
                  if isinstance(v, dict) and v.get("$ref") == target)
    base = None
    node = registry.resolver().lookup(f"{doc_id}#{fragment}").contents
    for part in node.get("allOf", []) if isinstance(node, dict) else []:
        ref = part.get("$ref", "") if isinstance(part, dict) else ""
        if ref.startswith(CORE_ID + "#/$defs/"):
            base = ref.rsplit("/", 1)[1]
    return keys, base


# --- messages (jsonlines_check's, and these) ---------------------------------

def _message(err):
    """jsonschema's message, without a repr of a whole event or facet."""
    shown = jlc.shown(err.instance)
    if err.validator in ("anyOf", "oneOf") and shown:
        return f"{shown} matching none of the schemas allowed here"
    if err.validator == "format":
        return f"{err.instance!r} is not a valid {err.validator_value!r}"
    return jlc.message(err)


def _schema_failures(validator, instance, prefix):
    return jlc.schema_failures(validator, instance, prefix, message=_message)


# --- events ------------------------------------------------------------------

class Result(jlc.Result):
    def __init__(self):
        super().__init__()
        self.types = Counter()
        self.facets_checked = 0
        self.facets_unchecked = 0

    @property
    def events(self):
        return self.count

    def summary(self):
        types = " ".join(f"{t}={self.types.get(t, 0)}" for t in EVENT_TYPES)
        return (f"{self.events} events: {types} facets checked={self.facets_checked}"
                f" unchecked={self.facets_unchecked} -- {self.status()}")


def _facet_maps(event):
    """(JSON Pointer parts, facets object, the core definition its facets extend)."""
    run, job = event.get("run"), event.get("job")
    if isinstance(run, dict):
        yield ["run", "facets"], run.get("facets"), "RunFacet"
    if isinstance(job, dict):
        yield ["job", "facets"], job.get("facets"), "JobFacet"
    for side, io_key, io_base in (("inputs", "inputFacets", "InputDatasetFacet"),
                                  ("outputs", "outputFacets", "OutputDatasetFacet")):
        datasets = event.get(side)
        for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
            if isinstance(ds, dict):
                yield [side, i, "facets"], ds.get("facets"), "DatasetFacet"
                yield [side, i, io_key], ds.get(io_key), io_base


def _check_facets(registry, event, res, fail):
    for where, facets, expected_base in _facet_maps(event):
        if not isinstance(facets, dict):
            continue  # absent, or reported by the core schema
        for key, facet in facets.items():
            at = where + [key]
            url = facet.get("_schemaURL") if isinstance(facet, dict) else None
            if not isinstance(url, str):
                continue  # reported by the core schema (BaseFacet)
            doc_id, fragment = urldefrag(url)
            if doc_id not in registry:
                res.facets_unchecked += 1
                continue
            res.facets_checked += 1
            if not fragment:
                # A URL of the whole file: check it as the file checks its
                # top-level keys, which only works under a declared key.
                declared = sorted(registry.contents(doc_id).get("properties", {}))
                if key not in declared:
                    fail(jlc.pointer(at), f"facet key {key!r} is not one {doc_id} declares ({declared})")
                    continue
                for pointer, msg in _schema_failures(_validator(registry, doc_id), {key: facet}, where):
                    fail(pointer, msg)
                continue
            try:
                keys, base = _facet_info(registry, doc_id, fragment)
            except Unresolvable as e:
                fail(jlc.pointer(at + ["_schemaURL"]), f"{url!r} names no definition: {e}")
                continue
            if keys and key not in keys:
                fail(jlc.pointer(at), f"facet key {key!r}: {doc_id} attaches this facet as {' or '.join(map(repr, keys))}")
            if base and base != expected_base:
                fail(jlc.pointer(at), f"a {base} (from {url}) attached where a {expected_base} belongs")
            for pointer, msg in _schema_failures(_validator(registry, url), facet, at):
                fail(pointer, msg)


def _cross_checks(event):
    """Rules relating facets to the rest of the event."""
    out = []
    run = event.get("run") if isinstance(event.get("run"), dict) else {}
    facets = run.get("facets") if isinstance(run.get("facets"), dict) else {}
    causes = facets.get("ultracore_causes", {})
    causes = causes.get("causes") if isinstance(causes, dict) else None
    inputs = event.get("inputs") if isinstance(event.get("inputs"), list) else []
    names = {ds.get("name") for ds in inputs if isinstance(ds, dict)}
    for i, cause in enumerate(causes if isinstance(causes, list) else []):
        topic = cause.get("topic") if isinstance(cause, dict) else None
        if isinstance(topic, str) and topic not in names:
            out.append((jlc.pointer(["run", "facets", "ultracore_causes", "causes", i, "topic"]),
                        f"cause topic {topic!r} is not one of the run's inputs"))
    return out


def validate_lines(lines, registry=None):
    """Validates an iterable of JSON-lines strings; returns a Result."""
    registry = registry or load_registry()
    event_v = _validator(registry, RUN_EVENT_URL)
    res = Result()
    for event, fail in jlc.json_lines(lines, res):
        if not isinstance(event, dict):
            fail("", "a RunEvent is a JSON object")
            continue
        if event.get("eventType") in EVENT_TYPES:
            res.types[event["eventType"]] += 1
        if event.get("schemaURL") != RUN_EVENT_URL:
            fail("/schemaURL", f"{event.get('schemaURL')!r} is not {RUN_EVENT_URL!r}, the only RunEvent schema stored")
        for pointer, msg in _schema_failures(event_v, event, []):
            fail(pointer, msg)
        _check_facets(registry, event, res, fail)
        for pointer, msg in _cross_checks(event):
            fail(pointer, msg)
    return res


def main(argv=None):
    return jlc.main(validate_lines, "Validate OpenLineage 2-0-2 RunEvents (JSON lines).", argv)


if __name__ == "__main__":
    sys.exit(main())
