#!/usr/bin/env python3
"""The Python reference for dataset validation and sharding: the same per-line rules as
`evalgate validate` / submit-evaluation (shared/src/dataset.rs), written the straightforward
way (standard library only: `json`, `hashlib`, `re`).

    validate.py DATASET                      # validation: one pass, JSON summary
    validate.py --shard DATASET [--out DIR]  # validation, then a second pass that builds
                                             # every shard (Bedrock lines) and metadata sidecar
    validate.py --max-prompts N ...          # the per-upload limit (default 250000)

Validation checks each line as evalgate does: UTF-8, JSON, an object, not the RAG format;
`prompt` a non-empty string; `referenceResponse` and `category` absent, null or non-empty
strings; `modelResponses` an array of exactly one object with a non-empty `response` and a
valid `modelIdentifier` (the same on every line) and no other key; keys that differ from a
Bedrock key only in case, `_` or `-`; the types of the metadata keys (`latencyMs`, `cost`,
`inputTokens`, `outputTokens`, `userId`); lines of at most 1 MiB; at most `--max-prompts`
records. It plans shards of at most 1000 records and 32 MiB of Bedrock lines (each line
serialised to measure it, as evalgate does). Sharding re-reads the file and writes each
record's Bedrock line (documented keys only) and its metadata line
(`{"line":N,"prompt_hash":H,"metadata":{...}}`), byte for byte what evalgate writes;
bench/run compares them with `evalgate-bench shard --out` before timing either.
"""

import argparse
import hashlib
import json
import math
import re
import sys

MAX_LINE_BYTES = 1 << 20
MAX_PROMPTS_PER_SHARD = 1000
MAX_SHARD_BYTES = 32 << 20
MAX_LISTED_PROBLEMS = 100
MAX_PROBLEMS = 10_000
BEDROCK_KEYS = ("prompt", "referenceResponse", "category", "modelResponses")
MODEL_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,255}")


def fold(key):
    return key.replace("_", "").replace("-", "").lower()


def type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def dumps(value, sort_keys=False):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


def text_field(record, key, required, problems):
    if key not in record:
        if required:
            problems.append(f"missing required key {key!r}")
        return None
    value = record[key]
    if value is None and not required:
        return None
    if not isinstance(value, str):
        problems.append(f"{key!r} must be a string, found {type_name(value)}")
        return None
    if not value.strip():
        problems.append(f"{key!r} is empty")
        return None
    return value


def parse_record(raw):
    """Returns (record, problems); record is None for a blank line or a bad one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [f"the line is not valid UTF-8 (invalid byte at position {e.start + 1})"]
    if not text.strip():
        return None, []
    try:
        record = json.loads(text)
    except ValueError as e:
        return None, [f"the line is not valid JSON: {e}"]
    if not isinstance(record, dict):
        return None, [f"the line is {type_name(record)}, not a JSON object"]
    if "conversationTurns" in record:
        return None, ["the record is in Bedrock's knowledge-base (RAG) evaluation format"]
    problems = []
    prompt = text_field(record, "prompt", True, problems)
    reference = text_field(record, "referenceResponse", False, problems)
    category = text_field(record, "category", False, problems)
    response = identifier = None
    responses = record.get("modelResponses")
    if responses is None and "modelResponses" not in record:
        problems.append("missing required key 'modelResponses'")
    elif not isinstance(responses, list):
        problems.append(f"'modelResponses' must be an array, found {type_name(responses)}")
    elif len(responses) != 1:
        problems.append(f"'modelResponses' has {len(responses)} responses; exactly one is allowed")
    elif not isinstance(responses[0], dict):
        problems.append(f"modelResponses[0] must be an object, found {type_name(responses[0])}")
    else:
        item = responses[0]
        response = item.get("response")
        if not isinstance(response, str) or not response.strip():
            problems.append("modelResponses[0].response must be a non-empty string")
        identifier = item.get("modelIdentifier")
        if not isinstance(identifier, str) or not MODEL_ID.fullmatch(identifier):
            problems.append("modelResponses[0].modelIdentifier is missing or not valid for Bedrock")
        for key in item:
            if key not in ("response", "modelIdentifier"):
                problems.append(f"modelResponses[0] has the unexpected key {key!r}")
    metadata = {}
    for key, value in record.items():
        if key in BEDROCK_KEYS:
            continue
        for known in BEDROCK_KEYS:
            if fold(known) == fold(key):
                problems.append(f"key {key!r} looks like {known!r} (keys are case-sensitive)")
        metadata[key] = value
    for key, integer in (("latencyMs", False), ("cost", False), ("inputTokens", True), ("outputTokens", True)):
        if key not in metadata or metadata[key] is None:
            continue
        value = metadata[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            ok = False
        elif integer:
            ok = isinstance(value, int) and value >= 0
        else:
            ok = value >= 0 and math.isfinite(value)
        if not ok:
            problems.append(f"metadata {key!r} must be a number >= 0")
    user = metadata.get("userId")
    if user is not None and (isinstance(user, (bool, list, dict))):
        problems.append("metadata 'userId' must be a string")
    if problems:
        return None, problems
    return {
        "prompt": prompt,
        "referenceResponse": reference,
        "category": category,
        "response": response,
        "modelIdentifier": identifier,
        "metadata": metadata,
    }, []


def bedrock_line(record):
    doc = {"prompt": record["prompt"]}
    if record["referenceResponse"] is not None:
        doc["referenceResponse"] = record["referenceResponse"]
    if record["category"] is not None:
        doc["category"] = record["category"]
    doc["modelResponses"] = [{"response": record["response"], "modelIdentifier": record["modelIdentifier"]}]
    return dumps(doc).encode("utf-8")


def metadata_line(number, record):
    prompt_hash = hashlib.sha256(record["prompt"].encode("utf-8")).hexdigest()[:16]
    return ('{"line":%d,"prompt_hash":"%s","metadata":%s}' % (
        number, prompt_hash, dumps(record["metadata"], sort_keys=True))).encode("utf-8")


def lines(path):
    """(number, bytes) of every line, without its line break; a BOM on line 1 is dropped."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield number, raw


class Planner:
    def __init__(self):
        self.shards = []  # [records, bytes, first line, last line]

    def add(self, number, size):
        last = self.shards[-1] if self.shards else None
        if last is None or last[0] >= MAX_PROMPTS_PER_SHARD or last[1] + size > MAX_SHARD_BYTES:
            last = [0, 0, number, number]
            self.shards.append(last)
        last[0] += 1
        last[1] += size
        last[3] = number
        return len(self.shards) - 1


def validate(path, max_prompts):
    summary = {"lines": 0, "records": 0, "with_reference": 0, "with_category": 0, "with_metadata": 0,
               "model_identifier": None, "problem_count": 0, "problems": []}
    metadata_keys = set()
    planner = Planner()

    def problem(number, text):
        summary["problem_count"] += 1
        if len(summary["problems"]) < MAX_LISTED_PROBLEMS:
            summary["problems"].append(f"line {number}: {text}" if number else text)

    for number, raw in lines(path):
        summary["lines"] = number
        if len(raw) > MAX_LINE_BYTES:
            problem(number, f"the line is {len(raw)} bytes, over the limit of {MAX_LINE_BYTES} bytes per record")
        else:
            record, problems = parse_record(raw)
            for p in problems:
                problem(number, p)
            if record is not None:
                if summary["model_identifier"] is None:
                    summary["model_identifier"] = record["modelIdentifier"]
                elif summary["model_identifier"] != record["modelIdentifier"]:
                    problem(number, "modelIdentifier differs from the first record's")
                summary["records"] += 1
                summary["with_reference"] += record["referenceResponse"] is not None
                summary["with_category"] += record["category"] is not None
                if record["metadata"]:
                    summary["with_metadata"] += 1
                    for key in record["metadata"]:
                        if len(metadata_keys) < 50:
                            metadata_keys.add(key)
                if summary["records"] <= max_prompts:
                    planner.add(number, len(bedrock_line(record)) + 1)
        if summary["problem_count"] >= MAX_PROBLEMS:
            summary["stopped_at_line"] = number
            break
    if summary["lines"] == 0:
        problem(None, "the dataset is empty (0 bytes)")
    elif summary["records"] == 0 and summary["problem_count"] == 0:
        problem(None, "every line is blank")
    if summary["records"] > max_prompts:
        problem(None, f"the dataset has {summary['records']} records; one upload accepts at most {max_prompts}")
    summary["metadata_keys"] = sorted(metadata_keys)
    summary["shards"] = len(planner.shards)
    summary["valid"] = summary["problem_count"] == 0
    return summary, planner.shards


def shard(path, plan, out_dir):
    """The second pass: every shard's Bedrock lines and metadata sidecar."""
    planner = Planner()
    totals = {"shards": 0, "shardBytes": 0, "metadataBytes": 0}
    body, meta, current = [], [], 0

    def flush(index):
        expected = plan[index]
        got = sum(len(b) + 1 for b in body)
        if expected[0] != len(body) or expected[1] != got:
            raise SystemExit(f"the dataset changed between validation and sharding (shard {index + 1})")
        data, sidecar = b"\n".join(body) + b"\n", b"\n".join(meta) + b"\n"
        totals["shards"] += 1
        totals["shardBytes"] += len(data)
        totals["metadataBytes"] += len(sidecar)
        if out_dir:
            with open(f"{out_dir}/shard-{index + 1:04d}.jsonl", "wb") as f:
                f.write(data)
            with open(f"{out_dir}/metadata-{index + 1:04d}.jsonl", "wb") as f:
                f.write(sidecar)

    for number, raw in lines(path):
        record, problems = parse_record(raw)
        if problems:
            raise SystemExit(f"the dataset changed between validation and sharding: line {number}")
        if record is None:
            continue
        line = bedrock_line(record)
        index = planner.add(number, len(line) + 1)
        if index != current and body:
            flush(current)
            body, meta = [], []
        current = index
        body.append(line)
        meta.append(metadata_line(number, record))
    if body:
        flush(current)
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--shard", action="store_true", help="also build the shards (second pass)")
    parser.add_argument("--out", help="write shard-NNNN.jsonl and metadata-NNNN.jsonl here")
    parser.add_argument("--max-prompts", type=int, default=250_000)
    args = parser.parse_args()
    summary, plan = validate(args.dataset, args.max_prompts)
    if args.shard and summary["valid"]:
        summary.update(shard(args.dataset, plan, args.out))
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0 if summary["valid"] else 3


if __name__ == "__main__":
    sys.exit(main())
