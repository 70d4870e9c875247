/**
 * Structured JSON logs through pino: one object per line, with the bound fields (plugin, workspace id, operation) on
 * each. Lines are written synchronously (a line must never be lost to an async transport when the process exits at
 * once, as `wsd run` does after a stop), and every line passes the one redaction step below.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { redactValue, scrubSecrets } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LogSink {
  write(line: string): unknown;
}

export function createLogger(options: { level?: LogLevel; sink?: LogSink; fields?: LogFields } = {}): Logger {
  const destination: DestinationStream = options.sink ?? pino.destination({ dest: 1, sync: true });
  const root = pino(
    {
      level: options.level ?? 'info',
      base: null,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        // The one redaction step for a line's fields (a child's are redacted once, when bound): secret-named keys
        // at any depth and credentials inside strings (URLs with user info, tokens) never reach a line (redact.ts).
        log: (fields) => serializeFields(fields) ?? {},
      },
    },
    destination,
  );
  const wrap = (logger: PinoLogger): Logger => ({
    debug: (msg, fields) => logger.debug(fields ?? {}, scrubSecrets(msg)),
    info: (msg, fields) => logger.info(fields ?? {}, scrubSecrets(msg)),
    warn: (msg, fields) => logger.warn(fields ?? {}, scrubSecrets(msg)),
    error: (msg, fields) => logger.error(fields ?? {}, scrubSecrets(msg)),
    child: (fields) => wrap(logger.child(serializeFields(fields) ?? {})),
  });
  return wrap(options.fields ? root.child(serializeFields(options.fields) ?? {}) : root);
}

/** A logger that drops everything; for tests and for commands that must keep stdout clean. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

function serializeFields(fields: LogFields | undefined): LogFields | undefined {
  if (!fields) return undefined;
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? serializeError(value) : value;
  }
  return redactValue(out) as LogFields;
}

function serializeError(error: Error): LogFields {
  const out: LogFields = { message: error.message, name: error.name };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (error.cause instanceof Error) out.cause = error.cause.message;
  return out;
}
