import { isDigit } from './scalar-formats.js';
import { describeRowValue } from './value-path.js';

/* Text forms BigQuery accepts for DATE, DATETIME, TIMESTAMP and TIME values. */

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : (MONTH_DAYS[month - 1] ?? 0);
}

/** Days since 1970-01-01 (Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** Seconds since the epoch of 0001-01-01T00:00:00Z and of 10000-01-01T00:00:00Z. */
export const MIN_SECONDS = -62_135_596_800;
export const END_SECONDS = 253_402_300_800;

// BigQuery's canonical forms: one- or two-digit month/day/hour/minute/second, 'T' or ' ' separator.
const DATE_PART = String.raw`([+-]?\d{4,})-(\d{1,2})-(\d{1,2})`;
const TIME_PART = String.raw`(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d{1,9})?)?`;
const DATE_RE = new RegExp(`^${DATE_PART}$`);
const DATETIME_RE = new RegExp(`^${DATE_PART}(?:[Tt ]${TIME_PART})?$`);
const TIMESTAMP_RE = new RegExp(`^${DATE_PART}(?:[Tt ]${TIME_PART})?\\s*(?:([Zz]|UTC)|([+-])(\\d{1,2})(?::?(\\d{2}))?|[A-Za-z]+(?:/[A-Za-z0-9_+-]+)+)?$`);
const TIME_RE = new RegExp(`^${TIME_PART}$`);

export type DateCheck = { ok: true } | { ok: false; problem: string };

const OK: DateCheck = { ok: true };
export const RANGE = 'is outside 0001-01-01..9999-12-31';

function checkDateParts(type: string, s: string, m: RegExpExecArray): DateCheck {
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return { ok: false, problem: `: ${type} ${JSON.stringify(s)} is not a valid date` };
  if (year < 1 || year > 9999) return { ok: false, problem: `: ${type} ${JSON.stringify(s)} ${RANGE}` };
  return OK;
}

function checkTimeParts(type: string, s: string, hour: string | undefined, minute: string | undefined, second: string | undefined): DateCheck {
  if (hour === undefined) return OK;
  if (Number(hour) > 23 || Number(minute) > 59 || (second !== undefined && Number(second) > 59)) {
    return { ok: false, problem: `: ${type} ${JSON.stringify(s)} is not a valid time of day` };
  }
  return OK;
}

export function checkDate(s: string): DateCheck {
  const m = DATE_RE.exec(s);
  if (m === null) return { ok: false, problem: `: DATE needs "YYYY-MM-DD", got ${describeRowValue(s)}` };
  return checkDateParts('DATE', s, m);
}

export function checkDatetime(s: string): DateCheck {
  const m = DATETIME_RE.exec(s);
  if (m === null) return { ok: false, problem: `: DATETIME needs "YYYY-MM-DD[THH:MM[:SS[.ffffff]]]", got ${describeRowValue(s)}` };
  const date = checkDateParts('DATETIME', s, m);
  return date.ok ? checkTimeParts('DATETIME', s, m[4], m[5], m[6]) : date;
}

/** Two decimal digits at `i`, or -1. */
function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The form the row converter writes, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, checked without a regex: it is
 * what almost every TIMESTAMP value looks like. False means "not this form or not valid", and the
 * general check then decides and explains.
 */
function isCanonicalTimestamp(s: string): boolean {
  if (s.length !== 27 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84) return false;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46 || s.charCodeAt(26) !== 90) return false;
  for (let i = 20; i < 26; i++) if (!isDigit(s.charCodeAt(i))) return false;
  const century = twoDigits(s, 0);
  const yy = twoDigits(s, 2);
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  if (century < 0 || yy < 0 || month < 1 || month > 12 || day < 1) return false;
  const year = century * 100 + yy;
  if (year < 1 || day > daysInMonth(year, month)) return false;
  const hour = twoDigits(s, 11);
  const minute = twoDigits(s, 14);
  const second = twoDigits(s, 17);
  return hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59;
}

export function checkTimestampString(s: string): DateCheck {
  if (isCanonicalTimestamp(s)) return OK;
  const m = TIMESTAMP_RE.exec(s);
  if (m === null)
    return { ok: false, problem: `: TIMESTAMP needs "YYYY-MM-DD[THH:MM[:SS[.ffffff]]][zone]" or seconds since the epoch, got ${describeRowValue(s)}` };
  const date = checkDateParts('TIMESTAMP', s, m);
  if (!date.ok) return date;
  const time = checkTimeParts('TIMESTAMP', s, m[4], m[5], m[6]);
  if (!time.ok) return time;
  const year = Number(m[1]);
  // Only an offset at either end of the range can move the instant outside it.
  if ((year === 1 || year === 9999) && m[8] !== undefined) {
    const offset = (Number(m[9]) * 60 + Number(m[10] ?? 0)) * (m[8] === '-' ? -1 : 1);
    const local = daysFromCivil(year, Number(m[2]), Number(m[3])) * 86_400 + Number(m[4] ?? 0) * 3600 + Number(m[5] ?? 0) * 60 + Number(m[6] ?? 0);
    const utc = local - offset * 60;
    if (utc < MIN_SECONDS || utc >= END_SECONDS) return { ok: false, problem: `: TIMESTAMP ${JSON.stringify(s)} ${RANGE}` };
  }
  return OK;
}

export function checkTime(s: string): DateCheck {
  const m = TIME_RE.exec(s);
  if (m === null) return { ok: false, problem: `: TIME needs "HH:MM:SS[.ffffff]", got ${describeRowValue(s)}` };
  return checkTimeParts('TIME', s, m[1], m[2], m[3]);
}
