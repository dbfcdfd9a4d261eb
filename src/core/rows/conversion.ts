import { TributaryError } from '../../errors.js';
import type { RowValue } from '../table-schema.js';
import { formatPath, type PathNode } from './value-path.js';

/** One compiled conversion of a decoded Avro value; `parent`/`key` name it if it fails. */
export type Convert = (value: unknown, parent: PathNode | undefined, key: string | number) => RowValue;

export function fail(parent: PathNode | undefined, key: string | number, problem: string): never {
  const path = formatPath(parent, key);
  throw new TributaryError('CONVERSION_FAILED', path === '' ? `record: ${problem}` : `field "${path}": ${problem}`);
}
