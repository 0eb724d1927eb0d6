#!/usr/bin/env python3
"""Self-test for validate_openlineage.py and the OpenLineage schemas under
crates/mesh/schema/openlineage.

    python tools/test_validate_openlineage.py

The valid events are shaped as crates/mesh/src/openlineage.rs writes them
(its unit tests pin the same field names and values).
"""

import copy
import json
import subprocess
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True

import validate_openlineage as vol  # noqa: E402

PRODUCER = "urn:ultracore:mesh:0.1.0"
KAFKA = "kafka://broker-1:9092"
JOB_TYPE = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
SCHEMA = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
VERSION = ("https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
           "#/$defs/DatasetVersionDatasetFacet")
CAUSES = "urn:ultracore:openlineage:facets:1-0-0:UltracoreCausesRunFacet.json#/$defs/UltracoreCausesRunFacet"
GROUP = ("urn:ultracore:openlineage:facets:1-0-0:UltracoreConsumerGroupJobFacet.json"
         "#/$defs/UltracoreConsumerGroupJobFacet")


def facet(url, **fields):
    return {"_producer": PRODUCER, "_schemaURL": url, **fields}


REFRESH = {
    "eventTime": "2024-05-01T09:30:00.123456789Z",
    "eventType": "COMPLETE",
    "run": {
        "runId": "9dd6f083-244f-5b58-aa4e-cf43d2a5347d",
        "facets": {
            "ultracore_causes": facet(CAUSES, causes=[
                {"topic": "trades", "partition": 3, "offset": 41,
                 "eventId": "01900000-0000-7000-8000-000000000001"},
                {"topic": "portfolio.events", "partition": 4294967295, "offset": 18446744073709551615,
                 "eventId": "01900000-0000-7000-8000-000000000002"},
            ]),
        },
    },
    "job": {
        "namespace": "ultracore",
        "name": "mesh.refresh.holdings-daily",
        "facets": {"jobType": facet(JOB_TYPE, processingType="BATCH", integration="ULTRACORE",
                                    jobType="REFRESH")},
    },
    "inputs": [{"namespace": KAFKA, "name": "portfolio.events"}, {"namespace": KAFKA, "name": "trades"}],
    "outputs": [{
        "namespace": "ultracore://mesh",
        "name": "holdings.daily",
        "facets": {
            "schema": facet(SCHEMA, fields=[{"name": "account_id", "type": "STRING"},
                                            {"name": "market_value", "type": "DECIMAL(18,4)",
                                             "description": "in the account's currency"}]),
            "version": facet(VERSION, datasetVersion="12"),
        },
    }],
    "producer": PRODUCER,
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
}

STREAM = {
    "eventTime": "2024-05-01T09:35:00Z",
    "eventType": "RUNNING",
    "run": {"runId": "2613f50f-2b29-5456-ac59-e885875e0d55"},
    "job": {
        "namespace": "ultracore",
        "name": "portfolio-projector",
        "facets": {
            "jobType": facet(JOB_TYPE, processingType="STREAMING", integration="ULTRACORE",
                             jobType="STREAM_PROCESSOR"),
            "ultracore_consumerGroup": facet(GROUP, group="portfolio-projector-v1"),
        },
    },
    "inputs": [{"namespace": "ultracore-log://embedded", "name": "portfolio.events"}],
    "outputs": [{"namespace": "ultracore-log://embedded", "name": "portfolio.views"}],
    "producer": PRODUCER,
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
}


def lines(*events):
    return [json.dumps(e) for e in events]


def run(*events):
    return vol.validate_lines(lines(*events))


def mutate(event, fn):
    e = copy.deepcopy(event)
    fn(e)
    return e


class Accepts(unittest.TestCase):
    def assertValid(self, *events):
        res = run(*events)
        self.assertTrue(res.ok, res.failures)
        return res

    def test_refresh(self):
        res = self.assertValid(REFRESH)
        self.assertEqual(res.facets_checked, 4)
        self.assertEqual(res.facets_unchecked, 0)

    def test_cause_without_event_id(self):
        self.assertValid(mutate(REFRESH, lambda e: e["run"]["facets"]["ultracore_causes"]["causes"][0].pop("eventId")))

    def test_streaming(self):
        self.assertValid(STREAM)

    def test_every_event_type(self):
        res = self.assertValid(*(mutate(STREAM, lambda e, t=t: e.update(eventType=t)) for t in vol.EVENT_TYPES))
        self.assertEqual(set(res.types.values()), {1})

    def test_no_facets_and_no_datasets(self):
        def f(e):
            del e["run"]["facets"], e["job"]["facets"], e["inputs"], e["outputs"]
        self.assertValid(mutate(REFRESH, f))

    def test_time_zone_offset_and_lower_case_separator(self):
        self.assertValid(mutate(STREAM, lambda e: e.update(eventTime="2024-05-01t11:35:00.5+02:00")))

    def test_another_producers_facet_is_unchecked(self):
        other = {"_producer": "https://example.com/x", "_schemaURL": "https://example.com/f.json#/$defs/F",
                 "anything": [1, 2]}
        res = self.assertValid(mutate(STREAM, lambda e: e["run"].update(facets={"other_thing": other})))
        self.assertEqual(res.facets_unchecked, 1)

    def test_facet_schema_url_of_the_whole_file(self):
        # The form OpenLineage's documentation shows: no fragment.
        url = JOB_TYPE.split("#")[0]
        self.assertValid(mutate(STREAM, lambda e: e["job"]["facets"]["jobType"].update(_schemaURL=url)))

    def test_summary(self):
        res = self.assertValid(REFRESH, STREAM)
        self.assertIn("2 events: START=0 RUNNING=1 COMPLETE=1", res.summary())
        self.assertTrue(res.summary().endswith("-- OK"))

    def test_cli_ok(self):
        p = subprocess.run([sys.executable, str(HERE / "validate_openlineage.py")],
                           input="\n".join(lines(REFRESH, STREAM)) + "\n", capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.strip().count("\n"), 0)
        self.assertIn("2 events:", p.stdout)


class Rejects(unittest.TestCase):
    def assertInvalid(self, *events, where=None):
        res = run(*events)
        self.assertFalse(res.ok, "expected a failure")
        if where is not None:
            self.assertTrue(any(where in f"{ptr} {msg}" for _, ptr, msg in res.failures),
                            f"no failure mentioning {where!r}: {res.failures}")
        return res

    def test_missing_run_id(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e["run"].pop("runId")), where="'runId'")

    def test_bad_event_type(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e.update(eventType="complete")), where="/eventType")
        self.assertInvalid(mutate(REFRESH, lambda e: e.update(eventType="DONE")), where="/eventType")

    def test_bad_uuid(self):
        for bad in ("not-a-uuid", "9dd6f083244f5b58aa4ecf43d2a5347d", "9dd6f083-244f-5b58-aa4e-cf43d2a5347"):
            self.assertInvalid(mutate(REFRESH, lambda e, b=bad: e["run"].update(runId=b)), where="/run/runId")

    def test_bad_cause_event_id(self):
        def f(e):
            e["run"]["facets"]["ultracore_causes"]["causes"][0]["eventId"] = "42"
        self.assertInvalid(mutate(REFRESH, f), where="/run/facets/ultracore_causes/causes/0/eventId")

    def test_bad_event_time(self):
        for bad in ("2024-05-01T09:30:00", "2024-05-01 09:30:00Z", "2024-13-01T09:30:00Z", "yesterday"):
            self.assertInvalid(mutate(STREAM, lambda e, b=bad: e.update(eventTime=b)), where="/eventTime")

    def test_missing_top_level_fields(self):
        for field in ("eventTime", "producer", "schemaURL", "run", "job"):
            self.assertInvalid(mutate(REFRESH, lambda e, f=field: e.pop(f)), where=repr(field))

    def test_producer_not_a_uri(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e.update(producer="ultracore mesh")), where="/producer")

    def test_other_schema_url(self):
        url = "https://openlineage.io/spec/2-0-0/OpenLineage.json#/$defs/RunEvent"
        self.assertInvalid(mutate(REFRESH, lambda e: e.update(schemaURL=url)), where="/schemaURL")

    def test_job_and_dataset_need_namespace_and_name(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e["job"].pop("namespace")), where="'namespace'")
        self.assertInvalid(mutate(REFRESH, lambda e: e["outputs"][0].pop("name")), where="'name'")

    def test_facet_without_producer_or_schema_url(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e["job"]["facets"]["jobType"].pop("_producer")),
                           where="'_producer'")
        self.assertInvalid(mutate(REFRESH, lambda e: e["outputs"][0]["facets"]["version"].pop("_schemaURL")),
                           where="'_schemaURL'")

    def test_facet_against_its_own_schema(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e["job"]["facets"]["jobType"].pop("processingType")),
                           where="'processingType'")
        self.assertInvalid(mutate(REFRESH, lambda e: e["outputs"][0]["facets"]["version"].pop("datasetVersion")),
                           where="'datasetVersion'")
        self.assertInvalid(mutate(REFRESH, lambda e: e["outputs"][0]["facets"]["schema"]["fields"][0].pop("name")),
                           where="/outputs/0/facets/schema/fields/0")
        self.assertInvalid(mutate(STREAM, lambda e: e["job"]["facets"]["ultracore_consumerGroup"].update(group="")),
                           where="/job/facets/ultracore_consumerGroup/group")

    def test_cause_shape(self):
        def negative(e):
            e["run"]["facets"]["ultracore_causes"]["causes"][0]["offset"] = -1
        self.assertInvalid(mutate(REFRESH, negative), where="/run/facets/ultracore_causes/causes/0/offset")

        def extra(e):
            e["run"]["facets"]["ultracore_causes"]["causes"][0]["event_id"] = "x"
        self.assertInvalid(mutate(REFRESH, extra), where="/run/facets/ultracore_causes/causes/0")
        self.assertInvalid(mutate(REFRESH, lambda e: e["run"]["facets"]["ultracore_causes"].pop("causes")),
                           where="'causes'")

    def test_cause_without_required_fields(self):
        for field in ("topic", "partition", "offset"):
            def f(e, k=field):
                e["run"]["facets"]["ultracore_causes"]["causes"][0].pop(k)
            self.assertInvalid(mutate(REFRESH, f), where=repr(field))

    def test_cause_topic_not_an_input(self):
        self.assertInvalid(mutate(REFRESH, lambda e: e["inputs"].pop(1)),
                           where="cause topic 'trades' is not one of the run's inputs")

    def test_facet_under_another_key(self):
        def f(e):
            e["job"]["facets"]["jobtype"] = e["job"]["facets"].pop("jobType")
        self.assertInvalid(mutate(REFRESH, f), where="facet key 'jobtype'")

    def test_facet_on_the_wrong_entity(self):
        def f(e):
            e["run"]["facets"]["jobType"] = e["job"]["facets"].pop("jobType")
        self.assertInvalid(mutate(REFRESH, f), where="a JobFacet")

    def test_facet_schema_url_to_nothing(self):
        url = JOB_TYPE.replace("$defs/JobTypeJobFacet", "$defs/Nothing")
        self.assertInvalid(mutate(REFRESH, lambda e: e["job"]["facets"]["jobType"].update(_schemaURL=url)),
                           where="names no definition")

    def test_bad_json_line(self):
        res = vol.validate_lines(["{not json", "[]"])
        self.assertEqual([f[0] for f in res.failures], [1, 2])

    def test_cli_failure(self):
        p = subprocess.run([sys.executable, str(HERE / "validate_openlineage.py")],
                           input="\n".join(lines(REFRESH, mutate(STREAM, lambda e: e["run"].pop("runId")))) + "\n",
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("line 2: /run: 'runId' is a required property", p.stdout)
        self.assertIn("2 events", p.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    unittest.main(verbosity=1)
