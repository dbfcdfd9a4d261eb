import { destination as pinoDestination, pino, stdTimeFunctions, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/** Cloud Logging reads `severity`; pino's numeric `level` means nothing to it. */
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): PinoLogger {
  return pino(
    {
      level,
      base: { service: 'tributary' },
      messageKey: 'message',
      timestamp: stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
      },
    },
    destination ?? pinoDestination({ fd: 1, sync: true }),
  );
}

export type { PinoLogger };
