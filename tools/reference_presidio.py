#!/usr/bin/env python3
"""Microsoft Presidio's recognizers for our eight entities, scored on the
labelled corpus of `ultracore governance corpus` exactly as
`ultracore governance score` scores ours.

    PY="$(scripts/bench-env.sh)"   # pinned presidio-analyzer (spaCy, phonenumbers, tldextract)
    target/release/ultracore governance corpus --seed 42 --sentences 10000 > corpus.jsonl
    "$PY" tools/reference_presidio.py corpus.jsonl                    # or: ... < corpus.jsonl
    "$PY" tools/reference_presidio.py --threshold 0.3 corpus.jsonl

Output: one JSON object: presidio_version, threshold, context_enhancement,
phone_regions, per entity labelled / true_positives / false_positives /
false_negatives / precision / recall, near_misses(_flagged),
lookalikes(_flagged), sentences, and the time of the recognition alone
(seconds, cpu_seconds, bytes, mb_per_s).

What runs: Presidio's own AnalyzerEngine, its registry holding only
CreditCardRecognizer, IbanRecognizer, AuTfnRecognizer, AuAbnRecognizer,
AuMedicareRecognizer, UsSsnRecognizer, EmailRecognizer and PhoneRecognizer
as shipped (default patterns, context words, phone regions), language "en",
asked for those eight entities with `score_threshold=--threshold`. So
everything the analyzer does is in: the patterns, the validation (Luhn,
mod 97 and the country's IBAN format, the TFN, ABN and Medicare weights,
SSN invalidation, the public-suffix check of e-mail domains, phonenumbers'
validity), the context enhancement (LemmaContextAwareEnhancer defaults: a
context word among the 5 keywords before the match, matched as a substring
of their lemmas, adds 0.35 with a floor of 0.4), the threshold (a result is
kept when score >= threshold) and the analyzer's overlap resolution
(remove_duplicates: a result contained in another of the same entity with
an equal or higher score is dropped). Results of different entities that
overlap are all kept, as the analyzer returns them (resolving those is left
to presidio-anonymizer); each is scored.

Scores and thresholds: a recognizer with a checksum sets 1.0 when it holds
and drops the match when it fails, so the threshold matters only for
US_SSN (0.5 for 3-2-4 digits with separators, 0.05 for other shapes, no
checksum), PHONE_NUMBER (0.4) and what context adds. Presidio's own default
is 0 (AnalyzerEngine(default_score_threshold=0): everything returned);
callers pick a threshold per deployment. 0.5, the default here, is the
score of Presidio's e-mail, IBAN and medium SSN patterns before validation;
--threshold 0.3 also keeps every phone number (0.4) and bare nine-digit
SSNs with a context word (0.05 + 0.35); --threshold 0 is Presidio's own.

No spaCy model: Presidio's default NLP engine loads en_core_web_lg, which is
not on the package registry. The pattern recognizers need no model; only
context enhancement needs tokens and lemmas. They come from Presidio's
SlimSpacyNlpEngine (tokens and lemmas, no NER) given a blank English spaCy
pipeline, whose tokenizer is the one the trained English models use, and
whose lemma is the lower-cased token: what spaCy's English rule lemmatizer
returns when no tagger has run. A trained model would lemmatise inflected
forms ("cards" to "card"); since Presidio matches context words as
substrings of lemmas, that changes a match only where the lemma is a spaCy
stop word (e.g. "called" to "call"), which Presidio then skips. spaCy's
lookup lemmatizer (spacy-lookups-data) was tried and not used: without a
part of speech it turns "number" into "numb", which silences the
PhoneRecognizer context word "number". --no-context runs Presidio's
NoOpNlpEngine instead (no tokens, so no context from the text).

E-mail validation calls tldextract, which by default downloads the Public
Suffix List on first use and caches it under ~/.cache; here it uses the
snapshot bundled with the pinned tldextract (what it falls back to
offline anyway), so a run reads and writes nothing but stdin and stdout.

Left out: Presidio's NER recognizers (PERSON, LOCATION, ...: they need a
model and none of our entities is theirs), its other country recognizers,
and presidio-anonymizer. PhoneRecognizer keeps its default regions (US, GB,
DE, FR, IL, IN, CA, BR; not AU): that is Presidio as shipped;
--phone-regions AU,US,GB,... measures it configured for Australia.

Offsets: Presidio's are str (code point) indices; they are converted to
UTF-8 byte offsets, which the corpus labels use. Scoring as
crates/governance/src/corpus.rs `score`: a finding is a true positive only
with the labelled entity and exactly the labelled byte span, any other
finding is a false positive of its entity, a labelled span not found is a
false negative; near-miss and lookalike sentences count as flagged when
anything at all is found in them.

Timing: only the analyze() calls (NLP pipeline included), after an untimed
warm-up on the first WARM_UP sentences (lazy loading of recognizers,
regexes and phonenumbers metadata); the results of the timed pass are the
ones scored. One thread: Python, the regex module, phonenumbers and the
spaCy tokenizer all run on the calling thread (thread counts of native
libraries are set to 1 anyway). seconds is wall time, cpu_seconds the
process's CPU time; MB is 10^6 bytes of UTF-8 text.
"""

import argparse
import json
import os
import sys
import time

# Before spaCy (numpy, blis) loads: one thread everywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

from importlib.metadata import version  # noqa: E402

import spacy  # noqa: E402
import tldextract  # noqa: E402
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # noqa: E402
from presidio_analyzer.nlp_engine import NoOpNlpEngine, SlimSpacyNlpEngine  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    AuAbnRecognizer,
    AuMedicareRecognizer,
    AuTfnRecognizer,
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)
from spacy.language import Language  # noqa: E402

ENTITIES = [
    "CREDIT_CARD",
    "IBAN_CODE",
    "AU_TFN",
    "AU_ABN",
    "AU_MEDICARE",
    "US_SSN",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
]
WARM_UP = 200  # sentences; enough to load every recognizer's code and data


@Language.component("lowercase_lemma")
def lowercase_lemma(doc):
    """Lemma = lower-cased token (spaCy's English lemmatizer without a tagger)."""
    for token in doc:
        token.lemma_ = token.lower_
    return doc


class BlankEnglishNlpEngine(SlimSpacyNlpEngine):
    """SlimSpacyNlpEngine on a blank English pipeline: tokens and lemmas, no model."""

    def load(self):
        nlp = spacy.blank("en")
        nlp.add_pipe("lowercase_lemma")
        self.nlp = {"en": nlp}


def analyzer(context, phone_regions):
    # The bundled Public Suffix List snapshot, never a download (see above).
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    if context:
        nlp_engine = BlankEnglishNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}],
                                           auto_download=False)
    else:
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    phone = PhoneRecognizer(supported_regions=phone_regions) if phone_regions else PhoneRecognizer()
    recognizers = [
        CreditCardRecognizer(),
        IbanRecognizer(),
        AuTfnRecognizer(),
        AuAbnRecognizer(),
        AuMedicareRecognizer(),
        UsSsnRecognizer(),
        EmailRecognizer(),
        phone,
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    return engine, list(phone.supported_regions)


def byte_offsets(text):
    """Code point index -> UTF-8 byte offset, for every index 0..len(text)."""
    out = [0]
    for c in text:
        out.append(out[-1] + len(c.encode("utf-8")))
    return out


def find(engine, texts, threshold):
    """(entity, start, end) findings per text, byte offsets; and the timing."""
    for text in texts[:WARM_UP]:
        engine.analyze(text, language="en", entities=ENTITIES, score_threshold=threshold)
    results = []
    wall = time.perf_counter()
    cpu = time.process_time()
    for text in texts:
        results.append(engine.analyze(text, language="en", entities=ENTITIES,
                                      score_threshold=threshold))
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    found = []
    for text, rs in zip(texts, results):
        b = byte_offsets(text)
        found.append([(r.entity_type, b[r.start], b[r.end]) for r in rs])
    return found, wall, cpu


def score(corpus, found):
    """As crates/governance/src/corpus.rs `score`."""
    counts = {e: {"labelled": 0, "true_positives": 0, "false_positives": 0, "false_negatives": 0}
              for e in ENTITIES}
    out = {"near_misses": 0, "near_misses_flagged": 0, "lookalikes": 0, "lookalikes_flagged": 0}
    for sentence, f in zip(corpus, found):
        kind = sentence["kind"]
        if kind == "near_miss":
            out["near_misses"] += 1
            out["near_misses_flagged"] += bool(f)
        elif kind == "lookalike":
            out["lookalikes"] += 1
            out["lookalikes_flagged"] += bool(f)
        labels = [(s["entity"], s["start"], s["end"]) for s in sentence["spans"]]
        for label in labels:
            c = counts[label[0]]
            c["labelled"] += 1
            if label in f:
                c["true_positives"] += 1
            else:
                c["false_negatives"] += 1
        for finding in f:
            if finding not in labels:
                counts[finding[0]]["false_positives"] += 1
    for c in counts.values():
        found_n = c["true_positives"] + c["false_positives"]
        c["precision"] = c["true_positives"] / found_n if found_n else 1.0
        c["recall"] = c["true_positives"] / c["labelled"] if c["labelled"] else 1.0
    return {"entities": dict(sorted(counts.items())), **out}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", nargs="?", help="corpus JSON lines (default: stdin)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="keep results with score >= this (Presidio's own default is 0)")
    p.add_argument("--no-context", action="store_true",
                   help="no context enhancement (Presidio's NoOpNlpEngine)")
    p.add_argument("--phone-regions", type=lambda s: tuple(s.split(",")),
                   help="PhoneRecognizer regions, e.g. AU,US,GB (default: Presidio's)")
    args = p.parse_args()
    if not 0.0 <= args.threshold <= 1.0:
        p.error("--threshold must be between 0 and 1")

    lines = open(args.corpus, encoding="utf-8") if args.corpus else sys.stdin
    corpus = [json.loads(line) for line in lines if line.strip()]
    texts = [s["text"] for s in corpus]
    engine, phone_regions = analyzer(not args.no_context, args.phone_regions)
    found, wall, cpu = find(engine, texts, args.threshold)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(json.dumps({
        "presidio_version": version("presidio-analyzer"),
        "threshold": args.threshold,
        "context_enhancement": not args.no_context,
        "phone_regions": phone_regions,
        **score(corpus, found),
        "sentences": len(corpus),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "bytes": n_bytes,
        "mb_per_s": round(n_bytes / 1e6 / wall, 4),
    }))


if __name__ == "__main__":
    main()
