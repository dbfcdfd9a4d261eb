import { deflateRawSync } from 'node:zlib';
import { varint } from './avro-wire.js';

/** Avro's zig-zag long, for any signed value (block counts and sizes here are never negative). */
function long(n: number): Buffer {
  return varint(n);
}

function bytes(b: Buffer): Buffer {
  return Buffer.concat([long(b.length), b]);
}

export interface ContainerOptions {
  schema: object | string;
  /** Each record's Avro binary encoding. */
  records: Buffer[];
  codec?: 'null' | 'deflate' | string;
  /** Records per block (default: all in one block). */
  blockSize?: number;
  sync?: Buffer;
  extraMeta?: Record<string, Buffer>;
}

/** Writes an Avro object container file the way Avro's writers do, for tests. */
export function buildContainer(options: ContainerOptions): Buffer {
  const sync = options.sync ?? Buffer.from('0123456789abcdef');
  const meta: Array<[string, Buffer]> = [['avro.schema', Buffer.from(typeof options.schema === 'string' ? options.schema : JSON.stringify(options.schema))]];
  if (options.codec !== undefined) meta.push(['avro.codec', Buffer.from(options.codec)]);
  for (const [k, v] of Object.entries(options.extraMeta ?? {})) meta.push([k, v]);
  const parts: Buffer[] = [Buffer.from('Obj\x01', 'latin1'), long(meta.length)];
  for (const [k, v] of meta) parts.push(bytes(Buffer.from(k)), bytes(v));
  parts.push(long(0), sync);
  const per = options.blockSize ?? options.records.length;
  for (let i = 0; i < options.records.length; i += per) {
    const block = options.records.slice(i, i + per);
    let body = Buffer.concat(block);
    if (options.codec === 'deflate') body = deflateRawSync(body);
    parts.push(long(block.length), long(body.length), body, sync);
  }
  return Buffer.concat(parts);
}

export { long as avroLong };
