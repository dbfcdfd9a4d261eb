/* Dates, times and timestamps as BigQuery's canonical text, with exact integer arithmetic and no Date. */

export const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
export const MIN_SAFE_BIG = BigInt(Number.MIN_SAFE_INTEGER);
export const MICROS_PER_DAY = 86_400_000_000;
export const MICROS_PER_DAY_BIG = 86_400_000_000n;
export const MILLIS_PER_DAY = 86_400_000;
/** 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999, in microseconds since the epoch. */
export const MIN_MICROS = -62_135_596_800_000_000n;
export const MAX_MICROS = 253_402_300_799_999_999n;
export const MIN_MILLIS = -62_135_596_800_000;
export const MAX_MILLIS = 253_402_300_799_999;
/** 0001-01-01 and 9999-12-31 in days since the epoch. */
export const MIN_DAYS = -719_162;
export const MAX_DAYS = 2_932_896;

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : `${i}`));

/** Days since 1970-01-01 -> YYYY-MM-DD (Hinnant's civil_from_days; days must be in range). */
export function formatDays(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${String(10_000 + year).slice(1)}-${PAD2[month]}-${PAD2[day]}`;
}

/** Microseconds into the day (0..86399999999) -> HH:MM:SS.ffffff. */
export function formatTimeOfDay(micros: number): string {
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = micros - seconds * 1_000_000;
  return `${PAD2[Math.floor(seconds / 3600)]}:${PAD2[Math.floor(seconds / 60) % 60]}:${PAD2[seconds % 60]}.${String(1_000_000 + fraction).slice(1)}`;
}

/** A safe integer of microseconds: Number arithmetic is exact. */
export function formatSafeMicros(n: number): string {
  // The division may round across a day boundary, which the remainder corrects.
  let days = Math.floor(n / MICROS_PER_DAY);
  let rem = n - days * MICROS_PER_DAY;
  if (rem < 0) {
    days -= 1;
    rem += MICROS_PER_DAY;
  } else if (rem >= MICROS_PER_DAY) {
    days += 1;
    rem -= MICROS_PER_DAY;
  }
  return `${formatDays(days)}T${formatTimeOfDay(rem)}`;
}

export function formatMicros(micros: bigint): string {
  if (micros >= MIN_SAFE_BIG && micros <= MAX_SAFE_BIG) return formatSafeMicros(Number(micros));
  let d = micros / MICROS_PER_DAY_BIG;
  let r = micros % MICROS_PER_DAY_BIG;
  if (r < 0n) {
    d -= 1n;
    r += MICROS_PER_DAY_BIG;
  }
  return `${formatDays(Number(d))}T${formatTimeOfDay(Number(r))}`;
}

/** Millisecond values in range are far below 2^53, so plain numbers are exact. */
export function formatMillis(millis: number): string {
  const days = Math.floor(millis / MILLIS_PER_DAY);
  return `${formatDays(days)}T${formatTimeOfDay((millis - days * MILLIS_PER_DAY) * 1000)}`;
}
