#!/usr/bin/env python3
"""Writes test/fixtures/avro-container-vectors.json: Avro object container files written by Apache
Avro's Python implementation (Debian's python3-avro, 1.11.x) with the null and deflate codecs,
holding one record or several (in one block or in several), so the TypeScript container-file
reader is checked against a second, independent implementation. This is also how a Python
producer publishes in the container-file framing: one file per Pub/Sub message.

Each vector is {name, codec, schema, fileHex, records}: `records` are the data in Avro's JSON
encoding (a union value names its branch), in file order.

Run with an interpreter that has python3-avro (Debian's /usr/bin/python3):
  /usr/bin/python3 scripts/generate-avro-container-vectors.py
The output is deterministic: the sync markers come from a seeded generator.
"""

from __future__ import annotations

import io
import json
import os
import random

import avro.datafile
import avro.io
import avro.schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "avro-container-vectors.json")

METRIC = {
    "type": "record", "name": "Metric", "namespace": "com.acme.logs",
    "fields": [{"name": "name", "type": "string"}, {"name": "value", "type": "double"}, {"name": "count", "type": "long"}],
}
ACCESS = {
    "type": "record", "name": "Access", "namespace": "com.acme.logs",
    "fields": [
        {"name": "ts", "type": "long"},
        {"name": "method", "type": {"type": "enum", "name": "Method", "symbols": ["GET", "POST", "PUT", "DELETE"]}},
        {"name": "path", "type": "string"},
        {"name": "status", "type": "int"},
        {"name": "user_agent", "type": ["null", "string"], "default": None},
        {"name": "headers", "type": {"type": "map", "values": "string"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "body", "type": "bytes"},
        {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 4}},
    ],
}


def metric(i: int) -> tuple[dict, dict]:
    datum = {"name": f"cpu-{i}", "value": i / 4, "count": i * 1000003 - 7 + (2**40 if i % 2 else 0)}
    return datum, dict(datum)


def access(i: int) -> tuple[dict, dict]:
    ua = None if i % 2 else f"agent/{i} \u00e9"
    body = bytes([i, 0, 255])
    datum = {
        "ts": 1700000000000000 + i, "method": ["GET", "POST", "PUT", "DELETE"][i % 4], "path": f"/items/{i}",
        "status": 200 + i, "user_agent": ua, "headers": {"host": "api", "n": str(i)}, "tags": ["a"] * (i % 3),
        "body": body, "id": b"ab" + bytes([i, i]),
    }
    as_json = dict(datum)
    as_json["user_agent"] = None if ua is None else {"string": ua}
    # Avro's JSON encoding of bytes and fixed: one code point per byte
    as_json["body"] = body.decode("latin-1")
    as_json["id"] = datum["id"].decode("latin-1")
    return datum, as_json


def write_file(schema: dict, data: list[dict], codec: str, block_size: int, rng: random.Random) -> bytes:
    buf = io.BytesIO()
    avro.datafile.randbytes = lambda n: bytes(rng.getrandbits(8) for _ in range(n))
    writer = avro.datafile.DataFileWriter(buf, avro.io.DatumWriter(), avro.schema.parse(json.dumps(schema)), codec=codec)
    for n, datum in enumerate(data):
        writer.append(datum)
        if (n + 1) % block_size == 0 and n + 1 < len(data):
            writer.sync()  # ends the block here: the next records go into a new one
    writer.flush()
    raw = buf.getvalue()
    writer.close()
    return raw


def read_back(raw: bytes) -> list[dict]:
    reader = avro.datafile.DataFileReader(io.BytesIO(raw), avro.io.DatumReader())
    out = list(reader)
    reader.close()
    return out


def main() -> None:
    rng = random.Random(13)
    vectors = []
    for codec in ("null", "deflate"):
        for schema, make, count, block in ((METRIC, metric, 1, 1), (METRIC, metric, 5, 5), (ACCESS, access, 1, 1), (ACCESS, access, 6, 2)):
            pairs = [make(i) for i in range(count)]
            data = [p[0] for p in pairs]
            raw = write_file(schema, data, codec, block, rng)
            if read_back(raw) != data:
                raise SystemExit(f"avro read back something else for {schema['name']} {codec}")
            blocks = 1 if block >= count else (count + block - 1) // block
            vectors.append({
                "name": f"{schema['name']}, {count} record(s) in {blocks} block(s), codec {codec}",
                "codec": codec,
                "schema": schema,
                "fileHex": raw.hex(),
                "records": [p[1] for p in pairs],
            })
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(vectors, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
