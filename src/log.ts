import pino, { type Logger } from 'pino';

export type { Logger };

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Logs never touch stdout: the filter and the remote helper speak protocols there.
 * Quiet by default (errors are printed as plain messages by the entry points, not as log lines);
 * GITML_LOG=<level> turns logging on, GITML_LOG_FILE=<path> sends it to a file instead of stderr.
 */
export function createLogger(env: NodeJS.ProcessEnv, name = 'gitml'): Logger {
  const requested = (env.GITML_LOG ?? '').trim().toLowerCase();
  const level = LEVELS.has(requested) ? requested : requested === '1' || requested === 'true' ? 'debug' : 'silent';
  if (level === 'silent') return pino({ level: 'silent' });
  const destination = env.GITML_LOG_FILE
    ? pino.destination({ dest: env.GITML_LOG_FILE, append: true, sync: true, mkdir: true })
    : pino.destination({ fd: 2, sync: true });
  return pino(
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

/** A logger that drops everything: for library callers that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });

