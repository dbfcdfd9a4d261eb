#!/usr/bin/env bash
# Writes test/fixtures/apache-avro/java-vectors.json: Parsing Canonical Forms, CRC-64-AVRO
# fingerprints and single-object encodings made by Apache Avro Java (1.11, inside the Cloud SDK's
# Pub/Sub emulator jar), so the TypeScript fingerprint and single-object framing are checked
# against the reference implementation without Java at test time.
#
# Input: scripts/avro-java-vectors.input.jsonl, one {"name", "schema", "datum"} per line, where
# datum is the record in Avro's JSON encoding (unions as {"branch": value}).
# Usage: scripts/generate-avro-java-vectors.sh [path/to/cloud-pubsub-emulator-*-all.jar]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
jar="${1:-}"
if [[ -z "$jar" ]]; then
  sdk="$(dirname "$(dirname "$(readlink -f "$(command -v gcloud)")")")"
  jar="$(ls "$sdk"/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar | head -n1)"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/AvroJavaVectors.java" <<'JAVA'
import java.io.*;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.message.BinaryMessageEncoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

public class AvroJavaVectors {
  public static void main(String[] args) throws Exception {
    ObjectMapper mapper = new ObjectMapper();
    ArrayNode out = mapper.createArrayNode();
    for (String line : Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8)) {
      if (line.isBlank()) continue;
      JsonNode in = mapper.readTree(line);
      String schemaText = mapper.writeValueAsString(in.get("schema"));
      Schema schema = new Schema.Parser().parse(schemaText);
      ObjectNode v = out.addObject();
      v.put("name", in.get("name").asText());
      v.set("schema", in.get("schema"));
      v.put("canonicalForm", SchemaNormalization.toParsingForm(schema));
      v.put("fingerprint", Long.toString(SchemaNormalization.parsingFingerprint64(schema)));
      if (in.has("datum")) {
        String datumJson = mapper.writeValueAsString(in.get("datum"));
        Object datum = new GenericDatumReader<Object>(schema).read(null, DecoderFactory.get().jsonDecoder(schema, datumJson));
        ByteBuffer encoded = new BinaryMessageEncoder<Object>(GenericData.get(), schema).encode(datum);
        byte[] bytes = new byte[encoded.remaining()];
        encoded.get(bytes);
        StringBuilder hex = new StringBuilder();
        for (byte b : bytes) hex.append(String.format("%02x", b));
        v.set("datum", in.get("datum"));
        v.put("singleObjectHex", hex.toString());
      }
    }
    System.out.println(mapper.writerWithDefaultPrettyPrinter().writeValueAsString(out));
  }
}
JAVA
javac -cp "$jar" -d "$work" "$work/AvroJavaVectors.java"
java -cp "$jar:$work" AvroJavaVectors "$here/avro-java-vectors.input.jsonl" > "$root/test/fixtures/apache-avro/java-vectors.json"
echo "wrote test/fixtures/apache-avro/java-vectors.json"
