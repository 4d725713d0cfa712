import type pino from 'pino';

/**
 * What gitml logs through: the levels it uses, with pino's call shape (`log.debug({ fields }, 'msg')`).
 * A pino logger is one; so is the silent logger below.
 */
export interface Logger {
  debug(fields: unknown, message?: string): void;
  info(fields: unknown, message?: string): void;
  warn(fields: unknown, message?: string): void;
  error(fields: unknown, message?: string): void;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** A logger that drops everything: the default, and for library callers that do not care. */
export const silentLogger: Logger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});

/**
 * Logs never touch stdout: the filter and the remote helper speak protocols there.
 * Quiet by default (errors are printed as plain messages by the entry points, not as log lines);
 * GITML_LOG=<level> turns logging on, GITML_LOG_FILE=<path> sends it to a file instead of stderr.
 * pino is loaded only then: it is 30 modules, a seventh of a filter's start, in every process git
 * starts.
 */
export function createLogger(env: NodeJS.ProcessEnv, name = 'gitml'): Logger {
  const requested = (env.GITML_LOG ?? '').trim().toLowerCase();
  const level = LEVELS.has(requested) ? requested : requested === '1' || requested === 'true' ? 'debug' : 'silent';
  if (level === 'silent') return silentLogger;
  // Loaded here, synchronously, rather than imported at the top (see above).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = require('pino') as typeof pino;
  const destination = env.GITML_LOG_FILE
    ? load.destination({ dest: env.GITML_LOG_FILE, append: true, sync: true, mkdir: true })
    : load.destination({ fd: 2, sync: true });
  return load(
    {
      name,
      level,
      base: { pid: process.pid },
      // Credentials must never reach a log line, whatever a caller passes in.
      redact: {
        paths: ['token', '*.token', 'password', '*.password', 'secret', '*.secret', 'authorization', '*.authorization', 'headers.authorization', 'sas', '*.sas', 'accountKey', '*.accountKey'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
