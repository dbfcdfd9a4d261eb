#!/usr/bin/env python3
"""Writes test/fixtures/avro-vectors.json: Avro binary test vectors made by Apache Avro's own
Python implementation (Debian's python3-avro, 1.11.x), so that the TypeScript decoder and row
converter are checked against a second, independent implementation.

Each vector is {name, schema, payloadHex, confluentHex, expectedRow}:
- payloadHex: the Avro binary encoding of one datum (no container file, no framing);
- confluentHex: the Confluent wire format: 0x00, schema id 42 as 4 big-endian bytes, the payload;
- expectedRow: the BigQuery row the converter must produce, computed here in Python from the
  datum itself (see ROW MAPPING below), never from anything the TypeScript code does.

Every payload is then read back twice before it is written out: by avro's own DatumReader, and
by a small Avro binary reader in this file that works on raw ints and bytes (zig-zag varints,
two's complement decimals, epoch arithmetic). The row computed from those raw bytes must be
identical (as JSON text, so -0.0 and 0.0 differ) to expectedRow, and the whole payload must be
consumed. That catches any value that python3-avro encoded differently from what was meant.

ROW MAPPING
  null -> null; boolean -> bool; int -> number;
  long -> number if |v| <= 2^53-1 else decimal string;
  float/double -> number; NaN / +Inf / -Inf -> "NaN" / "Infinity" / "-Infinity";
  string -> string; bytes / fixed -> base64; enum -> symbol; record -> object (field order);
  array -> list; map -> list of {"key", "value"} in the order on the wire;
  union [null, T] (either order) -> null or T's value;
  union with >= 2 non-null branches -> null for the null branch, else an object with one key per
    non-null branch (primitive name, "array", "map", or a named type's short name), all null but
    the one written;
  timestamp-millis/micros -> "YYYY-MM-DDTHH:MM:SS.ffffffZ"; local-timestamp-millis/micros -> the
    same without "Z"; date -> "YYYY-MM-DD"; time-millis/micros -> "HH:MM:SS.ffffff";
  decimal (bytes or fixed) -> plain decimal string with exactly `scale` fraction digits;
  uuid -> string.

PYTHON3-AVRO 1.11.1 QUIRKS HANDLED HERE
- Logical types are applied on write and validated strictly: timestamp-* need timezone-aware
  datetime objects, date a date, time-* a time, decimal a Decimal; a plain int for those is refused
  by validation. local-timestamp-* is unknown to it (a warning at parse; written as a plain long),
  so those are converted to ints here.
- decimal: it writes the Decimal's own digits, ignoring the schema's scale: Decimal("1") in a
  scale-2 field would be written as unscaled 1 (0.01). Every Decimal is quantized to the scale first.
- unions: it writes the LAST branch that validates the datum (an int validates as double too, two
  bytes as bytes and as a fixed of size 2), after a validation pass that follows the FIRST branch a
  value shallowly fits (a dict fits any map). Branch order in the union schemas here accounts for
  both; every multi-branch union value names its branch, and the reader check confirms it.
- Python's datetime.strftime("%Y") does not zero-pad year 1, so dates are formatted by hand.

Run with an interpreter that has python3-avro (Debian's /usr/bin/python3):
  /usr/bin/python3 scripts/generate-avro-vectors.py
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import math
import os
import struct
import subprocess
import sys
import warnings
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

try:
    import avro
    import avro.errors
    import avro.io
    import avro.schema
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and not os.environ.get("AVRO_VECTORS_REEXEC"):
        # python3-avro installs into Debian's interpreter, which may not be the first python3 on PATH.
        env = dict(os.environ, AVRO_VECTORS_REEXEC="1")
        sys.exit(subprocess.call(["/usr/bin/python3", *sys.argv], env=env))
    sys.exit("This script needs Apache Avro for Python: apt-get install -y python3-avro, then run it with /usr/bin/python3.")

decimal.getcontext().prec = 200
UTC = dt.timezone.utc
SCHEMA_ID = 42
MAX_SAFE = 2**53 - 1
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "avro-vectors.json")


class U:
    """A value of a union with two or more non-null branches, with its branch named explicitly."""

    def __init__(self, branch: str, value: Any) -> None:
        self.branch = branch
        self.value = value


# ---------------------------------------------------------------------------------------------
# Schema walking with Avro name resolution (independent of avro.schema).

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class Names:
    def __init__(self, schema: Any) -> None:
        self.types: Dict[str, Tuple[Dict[str, Any], str]] = {}
        self._collect(schema, "")

    @staticmethod
    def fullname(name: str, namespace: str) -> str:
        if "." in name or not namespace:
            return name
        return namespace + "." + name

    @staticmethod
    def own_namespace(schema: Dict[str, Any], enclosing: str) -> str:
        name = schema["name"]
        if "." in name:
            return name.rsplit(".", 1)[0]
        return schema["namespace"] if "namespace" in schema else enclosing

    def _collect(self, schema: Any, ns: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, ns)
        elif isinstance(schema, dict):
            kind = schema["type"]
            if kind in ("record", "error", "enum", "fixed"):
                own = self.own_namespace(schema, ns)
                full = self.fullname(schema["name"], own)
                assert full not in self.types, f"{full} defined twice"
                self.types[full] = (schema, own)
                if kind in ("record", "error"):
                    for field in schema["fields"]:
                        self._collect(field["type"], own)
            elif kind == "array":
                self._collect(schema["items"], ns)
            elif kind == "map":
                self._collect(schema["values"], ns)
            elif isinstance(kind, (dict, list)):
                self._collect(kind, ns)

    def resolve(self, schema: Any, ns: str) -> Tuple[Any, str]:
        """A reference by name becomes its definition; returns (schema, namespace inside it)."""
        if isinstance(schema, str) and schema not in PRIMITIVES:
            for candidate in (self.fullname(schema, ns), schema):
                if candidate in self.types:
                    return self.types[candidate]
            raise KeyError(f"unknown type {schema} in namespace {ns!r}")
        if isinstance(schema, dict) and schema.get("type") in ("record", "error", "enum", "fixed"):
            return schema, self.own_namespace(schema, ns)
        if isinstance(schema, dict) and isinstance(schema.get("type"), str) and schema["type"] not in PRIMITIVES and schema["type"] not in ("array", "map"):
            return self.resolve(schema["type"], ns)
        return schema, ns


def kind_of(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return schema["type"] if isinstance(schema["type"], str) else kind_of(schema["type"])


def logical_of(schema: Any) -> Optional[str]:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def branch_key(names: Names, branch: Any, ns: str) -> str:
    resolved, _ = names.resolve(branch, ns)
    kind = kind_of(resolved)
    if kind in ("record", "error", "enum", "fixed"):
        return resolved["name"].rsplit(".", 1)[-1]
    return kind


def non_null_branches(schema: List[Any]) -> List[Any]:
    return [b for b in schema if b != "null" and not (isinstance(b, dict) and b.get("type") == "null")]


# ---------------------------------------------------------------------------------------------
# Formatting shared by both row computations (pure string formatting of integers).

def fmt_date(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"


def fmt_time(hour: int, minute: int, second: int, micro: int) -> str:
    return f"{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"


def fmt_decimal_unscaled(unscaled: int, scale: int) -> str:
    sign = "-" if unscaled < 0 else ""
    whole, frac = divmod(abs(unscaled), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}" if scale > 0 else f"{sign}{whole}"


def fmt_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def fmt_long(value: int) -> Any:
    return value if -MAX_SAFE <= value <= MAX_SAFE else str(value)



def wrap_repeated(names: Names, items_schema: Any, items: List[Any], ns: str) -> List[Any]:
    """BigQuery has no array of arrays: items that are themselves repeated go in a {"value": ...} record."""
    return [{"value": item} for item in items] if kind_of(names.resolve(items_schema, ns)[0]) in ("array", "map") else items


def unchosen(names: Names, branch: Any, ns: str) -> Any:
    """What an unchosen (or null) branch holds: BigQuery has no NULL REPEATED field, so [] for arrays and maps."""
    return [] if kind_of(names.resolve(branch, ns)[0]) in ("array", "map") else None


# ---------------------------------------------------------------------------------------------
# expectedRow from the datum as written in this file.

def to_row(names: Names, schema: Any, value: Any, ns: str) -> Any:
    schema, ns = names.resolve(schema, ns)
    kind = kind_of(schema)
    logical = logical_of(schema)
    if kind == "union":
        branches = non_null_branches(schema)
        if value is None:
            return unchosen(names, branches[0], ns) if len(branches) == 1 else None
        if len(branches) == 1:
            assert not isinstance(value, U), "[null, T] values are written bare"
            return to_row(names, branches[0], value, ns)
        assert isinstance(value, U), f"a value of union {schema} must say its branch"
        keys = [branch_key(names, b, ns) for b in branches]
        assert len(set(keys)) == len(keys)
        row = {k: unchosen(names, b, ns) for k, b in zip(keys, branches)}
        row[value.branch] = to_row(names, branches[keys.index(value.branch)], value.value, ns)
        return row
    if kind == "null":
        assert value is None
        return None
    if kind == "boolean":
        assert isinstance(value, bool)
        return value
    if logical == "decimal":
        assert isinstance(value, Decimal)
        scale = schema.get("scale", 0)
        quantized = value.quantize(Decimal(1).scaleb(-scale))
        assert quantized == value, f"{value} has more than {scale} fraction digits"
        assert len(quantized.as_tuple().digits) <= schema["precision"] or quantized == 0, f"{value} exceeds precision"
        text = format(quantized, "f")
        return text
    if kind == "int":
        if logical == "date":
            assert isinstance(value, dt.date) and not isinstance(value, dt.datetime)
            return fmt_date(value.year, value.month, value.day)
        if logical == "time-millis":
            assert isinstance(value, dt.time) and value.microsecond % 1000 == 0
            return fmt_time(value.hour, value.minute, value.second, value.microsecond)
        assert isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
        return value
    if kind == "long":
        if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
            assert isinstance(value, dt.datetime)
            if logical.startswith("local-"):
                assert value.tzinfo is None
                suffix = ""
            else:
                assert value.utcoffset() == dt.timedelta(0)
                suffix = "Z"
            if logical.endswith("millis"):
                assert value.microsecond % 1000 == 0
            return fmt_date(value.year, value.month, value.day) + "T" + fmt_time(value.hour, value.minute, value.second, value.microsecond) + suffix
        if logical == "time-micros":
            assert isinstance(value, dt.time)
            return fmt_time(value.hour, value.minute, value.second, value.microsecond)
        assert isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
        return fmt_long(value)
    if kind == "float":
        assert isinstance(value, float)
        assert math.isnan(value) or struct.unpack("<f", struct.pack("<f", value))[0] == value, f"{value} is not a float32"
        return fmt_float(value)
    if kind == "double":
        assert isinstance(value, float)
        return fmt_float(value)
    if kind == "string":
        assert isinstance(value, str)
        return value
    if kind == "bytes":
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode("ascii")
    if kind == "fixed":
        assert isinstance(value, bytes) and len(value) == schema["size"]
        return base64.b64encode(value).decode("ascii")
    if kind == "enum":
        assert value in schema["symbols"]
        return value
    if kind == "array":
        items = [to_row(names, schema["items"], item, ns) for item in value]
        return wrap_repeated(names, schema["items"], items, ns)
    if kind == "map":
        return [{"key": k, "value": to_row(names, schema["values"], v, ns)} for k, v in value.items()]
    if kind in ("record", "error"):
        assert set(value.keys()) == {f["name"] for f in schema["fields"]}, f"fields of {schema['name']}"
        return {f["name"]: to_row(names, f["type"], value[f["name"]], ns) for f in schema["fields"]}
    raise ValueError(f"unhandled schema {schema}")


# ---------------------------------------------------------------------------------------------
# The datum as python3-avro wants it.

def to_library(names: Names, schema: Any, value: Any, ns: str) -> Any:
    schema, ns = names.resolve(schema, ns)
    kind = kind_of(schema)
    logical = logical_of(schema)
    if kind == "union":
        if value is None:
            return None
        branches = non_null_branches(schema)
        if isinstance(value, U):
            keys = [branch_key(names, b, ns) for b in branches]
            return to_library(names, branches[keys.index(value.branch)], value.value, ns)
        return to_library(names, branches[0], value, ns)
    if logical == "decimal":
        # The quirk: python3-avro writes the Decimal's own digits; give it exactly `scale` of them.
        return value.quantize(Decimal(1).scaleb(-schema.get("scale", 0)))
    if logical in ("local-timestamp-millis", "local-timestamp-micros"):
        # Unknown to python3-avro 1.11: written as a plain long, so pass the long.
        delta = value - dt.datetime(1970, 1, 1)
        micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        return micros // 1000 if logical.endswith("millis") else micros
    if kind == "array":
        return [to_library(names, schema["items"], item, ns) for item in value]
    if kind == "map":
        return {k: to_library(names, schema["values"], v, ns) for k, v in value.items()}
    if kind in ("record", "error"):
        return {f["name"]: to_library(names, f["type"], value[f["name"]], ns) for f in schema["fields"]}
    return value


# ---------------------------------------------------------------------------------------------
# An independent reader of the binary encoding, straight to rows, from raw integers.

class RawReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), "read past the end"
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varlong(self) -> int:
        shift = 0
        acc = 0
        while True:
            byte = self.take(1)[0]
            acc |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            assert shift < 70, "varint too long"
        value = (acc >> 1) ^ -(acc & 1)
        assert -(2**63) <= value < 2**63
        return value

    def block_counts(self):
        while True:
            count = self.varlong()
            if count == 0:
                return
            if count < 0:
                self.varlong()  # block size in bytes
                count = -count
            yield count


def micros_to_parts(micros: int) -> Tuple[dt.date, int, int, int, int]:
    days, rem = divmod(micros, 86_400_000_000)
    day = dt.date.fromordinal(EPOCH_ORDINAL + days)
    seconds, micro = divmod(rem, 1_000_000)
    hour, rest = divmod(seconds, 3600)
    minute, second = divmod(rest, 60)
    return day, hour, minute, second, micro


def fmt_micros(micros: int) -> str:
    day, hour, minute, second, micro = micros_to_parts(micros)
    return fmt_date(day.year, day.month, day.day) + "T" + fmt_time(hour, minute, second, micro)


def raw_row(names: Names, schema: Any, r: RawReader, ns: str) -> Any:
    schema, ns = names.resolve(schema, ns)
    kind = kind_of(schema)
    logical = logical_of(schema)
    if kind == "union":
        index = r.varlong()
        assert 0 <= index < len(schema), f"union index {index} out of range"
        branch = schema[index]
        branches = non_null_branches(schema)
        if kind_of(names.resolve(branch, ns)[0]) == "null":
            return unchosen(names, branches[0], ns) if len(branches) == 1 else None
        value = raw_row(names, branch, r, ns)
        if len(branches) == 1:
            return value
        row = {branch_key(names, b, ns): unchosen(names, b, ns) for b in branches}
        row[branch_key(names, branch, ns)] = value
        return row
    if kind == "null":
        return None
    if kind == "boolean":
        byte = r.take(1)[0]
        assert byte in (0, 1)
        return byte == 1
    if kind == "int":
        value = r.varlong()
        assert -(2**31) <= value < 2**31
        if logical == "date":
            day = dt.date.fromordinal(EPOCH_ORDINAL + value)
            return fmt_date(day.year, day.month, day.day)
        if logical == "time-millis":
            assert 0 <= value < 86_400_000
            return fmt_micros(value * 1000)[11:]
        return value
    if kind == "long":
        value = r.varlong()
        if logical in ("timestamp-millis", "local-timestamp-millis"):
            return fmt_micros(value * 1000) + ("Z" if logical == "timestamp-millis" else "")
        if logical in ("timestamp-micros", "local-timestamp-micros"):
            return fmt_micros(value) + ("Z" if logical == "timestamp-micros" else "")
        if logical == "time-micros":
            assert 0 <= value < 86_400_000_000
            return fmt_micros(value)[11:]
        return fmt_long(value)
    if kind == "float":
        return fmt_float(struct.unpack("<f", r.take(4))[0])
    if kind == "double":
        return fmt_float(struct.unpack("<d", r.take(8))[0])
    if kind in ("bytes", "string", "fixed"):
        raw = r.take(schema["size"]) if kind == "fixed" else r.take(r.varlong())
        if logical == "decimal":
            return fmt_decimal_unscaled(int.from_bytes(raw, "big", signed=True), schema.get("scale", 0))
        if kind == "string":
            return raw.decode("utf-8", errors="strict")
        return base64.b64encode(raw).decode("ascii")
    if kind == "enum":
        index = r.varlong()
        return schema["symbols"][index]
    if kind == "array":
        out = []
        for count in r.block_counts():
            out.extend(raw_row(names, schema["items"], r, ns) for _ in range(count))
        return wrap_repeated(names, schema["items"], out, ns)
    if kind == "map":
        out = []
        for count in r.block_counts():
            for _ in range(count):
                key = r.take(r.varlong()).decode("utf-8")
                out.append({"key": key, "value": raw_row(names, schema["values"], r, ns)})
        return out
    if kind in ("record", "error"):
        return {f["name"]: raw_row(names, f["type"], r, ns) for f in schema["fields"]}
    raise ValueError(f"unhandled schema {schema}")


# ---------------------------------------------------------------------------------------------
# The vectors.

def ts(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def lts(*args: int) -> dt.datetime:
    return dt.datetime(*args)


def long_(logical: str) -> Dict[str, str]:
    return {"type": "long", "logicalType": logical}


def int_(logical: str) -> Dict[str, str]:
    return {"type": "int", "logicalType": logical}


def numeric_bytes() -> Dict[str, Any]:
    return {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}


def bignumeric_bytes() -> Dict[str, Any]:
    return {"type": "bytes", "logicalType": "decimal", "precision": 40, "scale": 10}


BIG = Decimal("123456789012345678901234567890.1234567890")
BIG_MAX = Decimal("9" * 30 + "." + "9" * 10)

VECTORS: List[Tuple[str, Dict[str, Any], Dict[str, Any]]] = []


def vector(name: str, schema: Dict[str, Any], datum: Dict[str, Any]) -> None:
    VECTORS.append((name, schema, datum))


vector(
    "access-log",
    {
        "type": "record",
        "name": "AccessLog",
        "namespace": "com.example.logs",
        "doc": "One HTTP access log line.",
        "fields": [
            {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "timestamp", "type": long_("timestamp-micros")},
            {"name": "host", "type": "string"},
            {"name": "client_ip", "type": "string"},
            {"name": "method", "type": {"type": "enum", "name": "HttpMethod", "symbols": ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]}},
            {"name": "path", "type": "string"},
            {"name": "status", "type": "int"},
            {"name": "bytes_sent", "type": "long"},
            {"name": "duration_seconds", "type": "double"},
            {"name": "user_agent", "type": ["null", "string"], "default": None},
            {"name": "referer", "type": ["null", "string"], "default": None},
            {"name": "user_id", "type": ["null", "long"], "default": None},
            {"name": "tls", "type": "boolean"},
            {"name": "headers", "type": {"type": "map", "values": "string"}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    },
    {
        "event_id": "3f1c9a8e-5b2d-4c7e-9f10-2a6b8d4e0c71",
        "timestamp": ts(2024, 3, 14, 15, 9, 26, 535897),
        "host": "api.example.com",
        "client_ip": "203.0.113.42",
        "method": "POST",
        "path": "/v1/orders/8842/items?expand=prices&currency=EUR",
        "status": 201,
        "bytes_sent": 5_368_709_120,
        "duration_seconds": 0.0425,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "referer": None,
        "user_id": 1_234_567_890_123,
        "tls": True,
        "headers": {"content-type": "application/json", "x-request-id": "req-7f3a2c", "accept-language": "fr-CH, fr;q=0.9"},
        "tags": ["prod", "eu-west1", "canary"],
    },
)

vector(
    "edge-numbers",
    {
        "type": "record",
        "name": "EdgeNumbers",
        "fields": [
            {"name": "int_min", "type": "int"},
            {"name": "int_max", "type": "int"},
            {"name": "int_zero", "type": "int"},
            {"name": "int_minus_one", "type": "int"},
            {"name": "long_max", "type": "long"},
            {"name": "long_minus_max", "type": "long"},
            {"name": "long_min", "type": "long"},
            {"name": "long_2_53", "type": "long"},
            {"name": "long_2_53_plus_1", "type": "long"},
            {"name": "long_max_safe", "type": "long"},
            {"name": "long_minus_max_safe", "type": "long"},
            {"name": "long_minus_2_53", "type": "long"},
            {"name": "long_zero", "type": "long"},
            {"name": "long_minus_one", "type": "long"},
        ],
    },
    {
        "int_min": -(2**31),
        "int_max": 2**31 - 1,
        "int_zero": 0,
        "int_minus_one": -1,
        "long_max": 2**63 - 1,
        "long_minus_max": -(2**63 - 1),
        "long_min": -(2**63),
        "long_2_53": 2**53,
        "long_2_53_plus_1": 2**53 + 1,
        "long_max_safe": 2**53 - 1,
        "long_minus_max_safe": -(2**53 - 1),
        "long_minus_2_53": -(2**53),
        "long_zero": 0,
        "long_minus_one": -1,
    },
)

vector(
    "float-double",
    {
        "type": "record",
        "name": "FloatingPoint",
        "fields": [
            {"name": "f_one_and_half", "type": "float"},
            {"name": "f_minus_quarter", "type": "float"},
            {"name": "f_zero", "type": "float"},
            {"name": "f_max", "type": "float"},
            {"name": "f_min_subnormal", "type": "float"},
            {"name": "f_2_24", "type": "float"},
            {"name": "f_nan", "type": "float"},
            {"name": "f_inf", "type": "float"},
            {"name": "f_minus_inf", "type": "float"},
            {"name": "d_tenth", "type": "double"},
            {"name": "d_max", "type": "double"},
            {"name": "d_min_subnormal", "type": "double"},
            {"name": "d_minus_zero", "type": "double"},
            {"name": "d_2_53_plus_2", "type": "double"},
            {"name": "d_nan", "type": "double"},
            {"name": "d_inf", "type": "double"},
            {"name": "d_minus_inf", "type": "double"},
        ],
    },
    {
        "f_one_and_half": 1.5,
        "f_minus_quarter": -0.25,
        "f_zero": 0.0,
        "f_max": 3.4028234663852886e38,
        "f_min_subnormal": 1.401298464324817e-45,
        "f_2_24": 16777216.0,
        "f_nan": math.nan,
        "f_inf": math.inf,
        "f_minus_inf": -math.inf,
        "d_tenth": 0.1,
        "d_max": 1.7976931348623157e308,
        "d_min_subnormal": 5e-324,
        "d_minus_zero": -0.0,
        "d_2_53_plus_2": 9007199254740994.0,
        "d_nan": math.nan,
        "d_inf": math.inf,
        "d_minus_inf": -math.inf,
    },
)

vector(
    "timestamps",
    {
        "type": "record",
        "name": "Timestamps",
        "fields": [
            {"name": "micros_epoch", "type": long_("timestamp-micros")},
            {"name": "micros_leap_day", "type": long_("timestamp-micros")},
            {"name": "micros_minus_one", "type": long_("timestamp-micros")},
            {"name": "micros_min", "type": long_("timestamp-micros")},
            {"name": "micros_max", "type": long_("timestamp-micros")},
            {"name": "micros_1900", "type": long_("timestamp-micros")},
            {"name": "millis_epoch", "type": long_("timestamp-millis")},
            {"name": "millis_leap_day", "type": long_("timestamp-millis")},
            {"name": "millis_minus_one", "type": long_("timestamp-millis")},
            {"name": "millis_min", "type": long_("timestamp-millis")},
            {"name": "millis_max", "type": long_("timestamp-millis")},
        ],
    },
    {
        "micros_epoch": ts(1970, 1, 1),
        "micros_leap_day": ts(2024, 2, 29, 23, 59, 59, 123456),
        "micros_minus_one": ts(1969, 12, 31, 23, 59, 59, 999999),
        "micros_min": ts(1, 1, 1),
        "micros_max": ts(9999, 12, 31, 23, 59, 59, 999999),
        "micros_1900": ts(1900, 3, 1, 0, 0, 0, 1),
        "millis_epoch": ts(1970, 1, 1),
        "millis_leap_day": ts(2000, 2, 29, 12, 0, 0, 7000),
        "millis_minus_one": ts(1969, 12, 31, 23, 59, 59, 999000),
        "millis_min": ts(1, 1, 1),
        "millis_max": ts(9999, 12, 31, 23, 59, 59, 999000),
    },
)

vector(
    "local-timestamps",
    {
        "type": "record",
        "name": "LocalTimestamps",
        "fields": [
            {"name": "local_micros", "type": long_("local-timestamp-micros")},
            {"name": "local_micros_minus_one", "type": long_("local-timestamp-micros")},
            {"name": "local_micros_min", "type": long_("local-timestamp-micros")},
            {"name": "local_micros_max", "type": long_("local-timestamp-micros")},
            {"name": "local_millis", "type": long_("local-timestamp-millis")},
        ],
    },
    {
        "local_micros": lts(2024, 7, 1, 8, 30, 0, 250001),
        "local_micros_minus_one": lts(1969, 12, 31, 23, 59, 59, 999999),
        "local_micros_min": lts(1, 1, 1),
        "local_micros_max": lts(9999, 12, 31, 23, 59, 59, 999999),
        "local_millis": lts(2024, 7, 1, 8, 30, 0, 250000),
    },
)

vector(
    "date-and-time",
    {
        "type": "record",
        "name": "DateAndTime",
        "fields": [
            {"name": "date_epoch", "type": int_("date")},
            {"name": "date_leap_day", "type": int_("date")},
            {"name": "date_minus_one", "type": int_("date")},
            {"name": "date_min", "type": int_("date")},
            {"name": "date_max", "type": int_("date")},
            {"name": "time_millis_midnight", "type": int_("time-millis")},
            {"name": "time_millis", "type": int_("time-millis")},
            {"name": "time_millis_max", "type": int_("time-millis")},
            {"name": "time_micros_midnight", "type": long_("time-micros")},
            {"name": "time_micros", "type": long_("time-micros")},
            {"name": "time_micros_max", "type": long_("time-micros")},
        ],
    },
    {
        "date_epoch": dt.date(1970, 1, 1),
        "date_leap_day": dt.date(2024, 2, 29),
        "date_minus_one": dt.date(1969, 12, 31),
        "date_min": dt.date(1, 1, 1),
        "date_max": dt.date(9999, 12, 31),
        "time_millis_midnight": dt.time(0, 0, 0),
        "time_millis": dt.time(12, 34, 56, 789000),
        "time_millis_max": dt.time(23, 59, 59, 999000),
        "time_micros_midnight": dt.time(0, 0, 0),
        "time_micros": dt.time(12, 34, 56, 789012),
        "time_micros_max": dt.time(23, 59, 59, 999999),
    },
)

vector(
    "decimal-numeric",
    {
        "type": "record",
        "name": "NumericDecimals",
        "fields": [
            {"name": "typical", "type": numeric_bytes()},
            {"name": "negative", "type": numeric_bytes()},
            {"name": "zero", "type": numeric_bytes()},
            {"name": "minus_cent", "type": numeric_bytes()},
            {"name": "whole_number", "type": numeric_bytes()},
            {"name": "max", "type": numeric_bytes()},
            {"name": "min", "type": numeric_bytes()},
            {"name": "unscaled_127", "type": numeric_bytes()},
            {"name": "unscaled_128", "type": numeric_bytes()},
            {"name": "unscaled_minus_128", "type": numeric_bytes()},
            {"name": "unscaled_minus_129", "type": numeric_bytes()},
            {"name": "fixed_typical", "type": {"type": "fixed", "name": "Numeric5", "size": 5, "logicalType": "decimal", "precision": 10, "scale": 2}},
            {"name": "fixed_negative", "type": "Numeric5"},
            {"name": "fixed_zero", "type": "Numeric5"},
            {"name": "fixed_minus_cent", "type": "Numeric5"},
            {"name": "fixed_max", "type": "Numeric5"},
            {"name": "nullable", "type": ["null", numeric_bytes()], "default": None},
        ],
    },
    {
        "typical": Decimal("12345678.90"),
        "negative": Decimal("-12345678.90"),
        "zero": Decimal("0"),
        "minus_cent": Decimal("-0.01"),
        "whole_number": Decimal("42"),
        "max": Decimal("99999999.99"),
        "min": Decimal("-99999999.99"),
        "unscaled_127": Decimal("1.27"),
        "unscaled_128": Decimal("1.28"),
        "unscaled_minus_128": Decimal("-1.28"),
        "unscaled_minus_129": Decimal("-1.29"),
        "fixed_typical": Decimal("1234.5"),
        "fixed_negative": Decimal("-98765432.10"),
        "fixed_zero": Decimal("0.00"),
        "fixed_minus_cent": Decimal("-0.01"),
        "fixed_max": Decimal("99999999.99"),
        "nullable": Decimal("-7.5"),
    },
)

vector(
    "decimal-bignumeric",
    {
        "type": "record",
        "name": "BigNumericDecimals",
        "fields": [
            {"name": "typical", "type": bignumeric_bytes()},
            {"name": "negative", "type": bignumeric_bytes()},
            {"name": "zero", "type": bignumeric_bytes()},
            {"name": "smallest_negative", "type": bignumeric_bytes()},
            {"name": "max", "type": bignumeric_bytes()},
            {"name": "min", "type": bignumeric_bytes()},
            {"name": "fixed_typical", "type": {"type": "fixed", "name": "BigNumeric17", "size": 17, "logicalType": "decimal", "precision": 40, "scale": 10}},
            {"name": "fixed_negative", "type": "BigNumeric17"},
            {"name": "fixed_zero", "type": "BigNumeric17"},
            {"name": "fixed_min", "type": "BigNumeric17"},
        ],
    },
    {
        "typical": BIG,
        "negative": -BIG,
        "zero": Decimal("0"),
        "smallest_negative": Decimal("-0.0000000001"),
        "max": BIG_MAX,
        "min": -BIG_MAX,
        "fixed_typical": Decimal("3.14159"),
        "fixed_negative": -BIG,
        "fixed_zero": Decimal("0"),
        "fixed_min": -BIG_MAX,
    },
)

vector(
    "uuid-and-bytes",
    {
        "type": "record",
        "name": "UuidAndBytes",
        "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "nil_id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "all_bytes", "type": "bytes"},
            {"name": "empty_bytes", "type": "bytes"},
            {"name": "digest", "type": {"type": "fixed", "name": "Md5", "size": 16}},
            {"name": "maybe_bytes", "type": ["null", "bytes"], "default": None},
        ],
    },
    {
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "nil_id": "00000000-0000-0000-0000-000000000000",
        "all_bytes": bytes(range(256)),
        "empty_bytes": b"",
        "digest": bytes.fromhex("d41d8cd98f00b204e9800998ecf8427e"),
        "maybe_bytes": b"\xff\xfe\x00",
    },
)

vector(
    "nested-records",
    {
        "type": "record",
        "name": "Request",
        "namespace": "com.example.http",
        "fields": [
            {"name": "id", "type": "long"},
            {
                "name": "client",
                "type": {
                    "type": "record",
                    "name": "Client",
                    "fields": [
                        {"name": "name", "type": "string"},
                        {"name": "geo", "type": ["null", {"type": "record", "name": "Geo", "fields": [{"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}, {"name": "country", "type": "string"}]}]},
                        {"name": "last_seen", "type": ["null", "Geo"]},
                    ],
                },
            },
            {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "price", "type": ["null", numeric_bytes()]}]}}},
            {"name": "no_items", "type": {"type": "array", "items": "Item"}},
        ],
    },
    {
        "id": 9_007_199_254_740_993,
        "client": {"name": "mobile-app", "geo": {"lat": 46.948, "lon": 7.4474, "country": "CH"}, "last_seen": None},
        "items": [
            {"sku": "A-1", "qty": 2, "price": Decimal("19.99")},
            {"sku": "B-22", "qty": -1, "price": None},
            {"sku": "C-333", "qty": 0, "price": Decimal("-0.5")},
        ],
        "no_items": [],
    },
)

vector(
    "maps-and-arrays",
    {
        "type": "record",
        "name": "MapsAndArrays",
        "fields": [
            {"name": "latencies", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
            {"name": "empty_map", "type": {"type": "map", "values": "string"}},
            {"name": "matrix", "type": {"type": "array", "items": {"type": "array", "items": "int"}}},
            {"name": "map_of_maps", "type": {"type": "map", "values": {"type": "map", "values": "boolean"}}},
            {"name": "nullable_items", "type": {"type": "array", "items": ["null", "string"]}},
        ],
    },
    {
        # Not in key order: the row keeps the order on the wire.
        "latencies": {"zeta": [3, 1, 2], "alpha": [], "mid": [2**53 + 1, -5]},
        "empty_map": {},
        "matrix": [[1, 2], [], [3]],
        "map_of_maps": {"b": {"y": True, "x": False}, "a": {}},
        # A NULL element cannot be stored (BigQuery arrays hold no NULL): see the converter's tests.
        "nullable_items": ["a", "", "b"],
    },
)

vector(
    "union-null-string-long",
    {
        "type": "record",
        "name": "UnionBranches",
        "fields": [
            {"name": "as_null", "type": ["null", "string", "long"]},
            {"name": "as_string", "type": ["null", "string", "long"]},
            {"name": "as_long", "type": ["null", "string", "long"]},
            {"name": "as_big_long", "type": ["null", "string", "long"]},
            {"name": "as_empty_string", "type": ["null", "string", "long"]},
            {"name": "null_last", "type": ["string", "null"]},
            {"name": "null_last_null", "type": ["string", "null"]},
        ],
    },
    {
        "as_null": None,
        "as_string": U("string", "hello"),
        "as_long": U("long", 1_099_511_627_776),
        "as_big_long": U("long", -(2**62)),
        "as_empty_string": U("string", ""),
        "null_last": "present",
        "null_last_null": None,
    },
)

vector(
    "union-complex-branches",
    {
        "type": "record",
        "name": "Complex",
        "namespace": "com.example.unions",
        "fields": [
            {
                "name": "first",
                "type": [
                    "null",
                    "int",
                    "string",
                    {"type": "array", "items": "int"},
                    # The record before the map: python3-avro validates a union value against the
                    # FIRST branch it shallowly fits (a dict fits a map), but writes the LAST one it
                    # fully fits.
                    {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]},
                    {"type": "map", "values": "string"},
                    {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]},
                    "boolean",
                    # bytes before the fixed: python3-avro picks the LAST branch a value validates
                    # against, and 2 bytes validate as both.
                    "bytes",
                    {"type": "fixed", "name": "Pair", "size": 2},
                ],
            },
            {"name": "as_string", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "as_array", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "as_map", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "as_record", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "as_enum", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "as_fixed", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "as_null", "type": ["null", "int", "string", {"type": "array", "items": "int"}, "Point", {"type": "map", "values": "string"}, "Color", "boolean", "bytes", "Pair"]},
            {"name": "float_or_double", "type": ["float", "double"]},
            {"name": "record_or_null", "type": ["Point", "null"]},
        ],
    },
    {
        "first": U("int", -7),
        "as_string": U("string", "not a color"),
        "as_array": U("array", [1, 2, 3]),
        "as_map": U("map", {"k2": "v2", "k1": "v1"}),
        "as_record": U("Point", {"x": 1, "y": -1}),
        "as_enum": U("Color", "GREEN"),
        "as_fixed": U("Pair", b"\x00\xff"),
        "as_null": None,
        "float_or_double": U("double", 0.1),
        "record_or_null": {"x": 0, "y": 0},
    },
)

vector(
    "recursive-linked-list",
    {
        "type": "record",
        "name": "Node",
        "namespace": "com.example.list",
        "fields": [
            {"name": "value", "type": "int"},
            {"name": "label", "type": ["null", "string"], "default": None},
            {"name": "next", "type": ["null", "Node"], "default": None},
        ],
    },
    {"value": 1, "label": "head", "next": {"value": 2, "label": None, "next": {"value": 3, "label": "tail", "next": None}}},
)

vector(
    "namespaces-and-named-refs",
    {
        "type": "record",
        "name": "Envelope",
        "namespace": "com.example.envelope",
        "fields": [
            {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 4}},
            {"name": "same_id_short_ref", "type": "Id"},
            {"name": "same_id_full_ref", "type": "com.example.envelope.Id"},
            {
                "name": "source",
                "type": {
                    "type": "record",
                    "name": "com.example.common.Source",
                    "fields": [
                        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["APP", "SYSTEM", "AUDIT"]}},
                        {"name": "host_id", "type": "com.example.envelope.Id"},
                    ],
                },
            },
            {"name": "target_kind", "type": "com.example.common.Kind"},
            {"name": "backup_source", "type": ["null", "com.example.common.Source"]},
            {"name": "id_or_kind", "type": ["null", "Id", "com.example.common.Kind"]},
            {
                "name": "other",
                "type": {
                    "type": "record",
                    "name": "Other",
                    "namespace": "com.other",
                    "fields": [
                        {"name": "kind", "type": "com.example.common.Kind"},
                        {"name": "own", "type": {"type": "enum", "name": "Kind", "symbols": ["X", "Y"]}},
                    ],
                },
            },
            {"name": "other_kind", "type": "com.other.Kind"},
            {"name": "plain", "type": {"type": "enum", "name": "Plain", "namespace": "", "symbols": ["ONLY"]}},
        ],
    },
    {
        "id": b"\x01\x02\x03\x04",
        "same_id_short_ref": b"\xaa\xbb\xcc\xdd",
        "same_id_full_ref": b"\x00\x00\x00\x00",
        "source": {"kind": "SYSTEM", "host_id": b"\xde\xad\xbe\xef"},
        "target_kind": "AUDIT",
        "backup_source": {"kind": "APP", "host_id": b"\x10\x20\x30\x40"},
        "id_or_kind": U("Kind", "APP"),
        "other": {"kind": "APP", "own": "Y"},
        "other_kind": "X",
        "plain": "ONLY",
    },
)

vector(
    "unicode-strings",
    {
        "type": "record",
        "name": "Unicode",
        "fields": [
            {"name": "emoji", "type": "string"},
            {"name": "cjk", "type": "string"},
            {"name": "mixed", "type": "string"},
            {"name": "combining", "type": "string"},
            {"name": "control", "type": "string"},
            {"name": "empty", "type": "string"},
            {"name": "labels", "type": {"type": "map", "values": "string"}},
            {"name": "words", "type": {"type": "array", "items": "string"}},
        ],
    },
    {
        "emoji": "🚀🔥👩‍💻🇨🇭",
        "cjk": "日志事件 로그 ログ",
        "mixed": "Grüße, Ελλάδα, שלום, مرحبا, 𝄞",
        "combining": "e\u0301 vs \u00e9",
        "control": "tab\there\nnew line \u0000 nul \u007f del \u2028 ls",
        "empty": "",
        "labels": {"ключ": "значение", "🔑": "値"},
        "words": ["naïve", "façade", "日本"],
    },
)

vector(
    "primitives",
    {
        "type": "record",
        "name": "Primitives",
        "fields": [
            {"name": "nothing", "type": "null"},
            {"name": "yes", "type": "boolean"},
            {"name": "no", "type": "boolean"},
            {"name": "maybe_flag", "type": ["null", "boolean"]},
            {"name": "small", "type": "int"},
            {"name": "big", "type": "long"},
            {"name": "ratio", "type": "float"},
            {"name": "precise", "type": "double"},
            {"name": "text", "type": "string"},
            {"name": "blob", "type": "bytes"},
        ],
    },
    {
        "nothing": None,
        "yes": True,
        "no": False,
        "maybe_flag": False,
        "small": 300,
        "big": -300,
        "ratio": 0.5,
        "precise": -123.456,
        "text": "plain ascii",
        "blob": b"hello",
    },
)


# ---------------------------------------------------------------------------------------------

def encode(schema_json: Dict[str, Any], datum: Any) -> bytes:
    with warnings.catch_warnings():
        # Parsing warns about local-timestamp-* (unknown to python3-avro 1.11): expected.
        warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
        parsed = avro.schema.parse(json.dumps(schema_json))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # On write, a logical type that falls back to its plain type would mean a wrong datum here.
        warnings.simplefilter("error", avro.errors.IgnoredLogicalType)
        avro.io.DatumWriter(parsed).write(datum, avro.io.BinaryEncoder(buffer))
    payload = buffer.getvalue()
    # avro's own reader must read it back too.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
        decoder = avro.io.BinaryDecoder(io.BytesIO(payload))
        avro.io.DatumReader(parsed).read(decoder)
        assert decoder.reader.tell() == len(payload), "avro's reader left bytes over"
    return payload


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=False)


def build() -> List[Dict[str, Any]]:
    out = []
    seen = set()
    for name, schema, datum in VECTORS:
        assert name not in seen, name
        seen.add(name)
        names = Names(schema)
        expected = to_row(names, schema, datum, "")
        payload = encode(schema, to_library(names, schema, datum, ""))
        reader = RawReader(payload)
        from_bytes = raw_row(names, schema, reader, "")
        assert reader.pos == len(payload), f"{name}: {len(payload) - reader.pos} bytes left over"
        if canonical(from_bytes) != canonical(expected):
            raise AssertionError(f"{name}: the bytes python3-avro wrote do not say what was meant:\n  meant {canonical(expected)}\n  wrote {canonical(from_bytes)}")
        out.append(
            {
                "name": name,
                "schema": schema,
                "payloadHex": payload.hex(),
                "confluentHex": (b"\x00" + SCHEMA_ID.to_bytes(4, "big") + payload).hex(),
                "expectedRow": expected,
            }
        )
    return out


def main() -> None:
    vectors = build()
    text = json.dumps(vectors, ensure_ascii=False, allow_nan=False, indent=2) + "\n"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as handle:
        handle.write(text)
    sizes = ", ".join(f"{v['name']} {len(v['payloadHex']) // 2} B" for v in vectors)
    print(f"wrote {len(vectors)} vectors to {os.path.relpath(OUT)} with avro {avro.__version__} (python {sys.version.split()[0]}): {sizes}")


if __name__ == "__main__":
    main()
