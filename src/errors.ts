/**
 * One error type with a closed set of codes. The code decides what the pipeline does with a
 * message, is the `code` label of every metric and the `tributary_error_code` dead-letter attribute,
 * so the three can never disagree.
 */

/** What the pipeline does with a message that failed with a code of this class. */
export type ErrorClass =
  /** The message can never succeed as it is: dead-letter it with the reason. */
  | 'data'
  /** Might succeed later: retry with backoff (bounded), then nack for redelivery. */
  | 'transient'
  /** The destination is broken (table missing, no permission): pause the route and probe. */
  | 'destination';

export const ERROR_CODES = {
  // data: dead-lettered
  NO_SCHEMA_REFERENCE: 'data',
  SCHEMA_NOT_FOUND: 'data',
  SCHEMA_INVALID: 'data',
  DECODE_FAILED: 'data',
  UNROUTED: 'data',
  CONVERSION_FAILED: 'data',
  ROW_INVALID: 'data',
  UNKNOWN_FIELD: 'data',
  ROW_TOO_LARGE: 'data',
  BIGQUERY_ROW_INVALID: 'data',
  SCHEMA_INCOMPATIBLE: 'data',
  // transient: retried, then nacked
  REGISTRY_UNAVAILABLE: 'transient',
  /**
   * The registry refuses the worker itself (no permission in its own project, bad credentials): a
   * configuration fault, never the message's. Nacked, logged loudly, and readiness fails until a
   * schema read succeeds again; dead-lettering would empty the stream over one IAM mistake.
   */
  REGISTRY_ACCESS_DENIED: 'transient',
  BIGQUERY_UNAVAILABLE: 'transient',
  BIGQUERY_RATE_LIMITED: 'transient',
  BIGQUERY_QUOTA_EXCEEDED: 'transient',
  BIGQUERY_ROW_RETRYABLE: 'transient',
  SCHEMA_PROPAGATING: 'transient',
  /** The request was larger than the destination takes: the batch is split, never resent whole. */
  REQUEST_TOO_LARGE: 'transient',
  DEAD_LETTER_FAILED: 'transient',
  SHUTTING_DOWN: 'transient',
  /** The route holds its whole share of the flow-control window: the message comes back later. */
  ROUTE_FULL: 'transient',
  INTERNAL: 'transient',
  // destination: the route pauses
  TABLE_NOT_FOUND: 'destination',
  ACCESS_DENIED: 'destination',
} as const satisfies Record<string, ErrorClass>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function errorClassOf(code: ErrorCode): ErrorClass {
  return ERROR_CODES[code];
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

export class TributaryError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TributaryError';
    this.code = code;
  }

  get errorClass(): ErrorClass {
    return ERROR_CODES[this.code];
  }
}

/** Unknown errors are transient: retried within bounds, never dead-lettered on a guess. */
export function toTributaryError(err: unknown): TributaryError {
  if (err instanceof TributaryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TributaryError('INTERNAL', message, { cause: err });
}

/** Raised by configuration loading; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
