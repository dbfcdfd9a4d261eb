import type { PathNode } from './value-path.js';

/* What every compiled check of the row validator shares: its signature and how it fails. */

/** Thrown (not an Error: no stack to capture) and caught once per row in validate(). */
export class Invalid {
  constructor(
    readonly code: 'ROW_INVALID' | 'UNKNOWN_FIELD',
    readonly parent: PathNode | undefined,
    readonly key: string | number,
    /** Follows `field "path"`: starts with " is ..." or ": ...". */
    readonly problem: string,
  ) {}
}

export function invalid(parent: PathNode | undefined, key: string | number, problem: string): never {
  throw new Invalid('ROW_INVALID', parent, key, problem);
}

export interface Context {
  unknownFields: 'dead-letter' | 'drop';
  dropped: string[] | undefined;
}

/** Returns the value, or a copy of it when unknown fields were dropped inside it. */
export type Check = (value: unknown, parent: PathNode | undefined, key: string | number, ctx: Context) => unknown;
