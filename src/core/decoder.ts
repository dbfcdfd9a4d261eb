import { TributaryError } from '../errors.js';
import type { CompiledSchema } from './schema-cache.js';
import type { SchemaEncoding } from './schema-reference.js';

/**
 * Decodes one payload with the writer's schema. Every failure is DECODE_FAILED: the bytes do not
 * match the schema they name, which no retry can change.
 */
export function decodePayload(schema: CompiledSchema, data: Buffer, bodyOffset: number, encoding: SchemaEncoding): unknown {
  try {
    if (encoding === 'JSON') {
      return schema.type.fromString(data.toString('utf8', bodyOffset));
    }
    // decode() reads in place (no view of the body per message); like fromBuffer, it must reject
    // both a truncated payload and trailing bytes.
    const { value, offset } = schema.type.decode(data, bodyOffset) as { value: unknown; offset: number };
    if (offset < 0) throw new Error('truncated buffer');
    if (offset < data.length) throw new Error('trailing data');
    return value;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TributaryError('DECODE_FAILED', `payload does not decode with schema ${schema.key} (${encoding}): ${reason.slice(0, 300)}`);
  }
}
