/**
 * Structured JSON logs: one event per line, with the bound fields (plugin, workspace id, operation) on each.
 * Deliberately tiny: the daemon logs little, and a line must never be lost to an async transport at exit.
 */
import { redactValue, scrubSecrets } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

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
  const min = levelRank[options.level ?? 'info'];
  const sink = options.sink ?? process.stdout;
  const make = (bound: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (levelRank[level] < min) return;
      // Bound fields were redacted when bound; secrets never reach a line (see redact.ts).
      const line = { time: new Date().toISOString(), level, msg: scrubSecrets(msg), ...bound, ...serializeFields(fields) };
      sink.write(`${JSON.stringify(line)}\n`);
    };
    return {
      debug: (msg, fields) => emit('debug', msg, fields),
      info: (msg, fields) => emit('info', msg, fields),
      warn: (msg, fields) => emit('warn', msg, fields),
      error: (msg, fields) => emit('error', msg, fields),
      child: (fields) => make({ ...bound, ...serializeFields(fields) }),
    };
  };
  return make(options.fields ?? {});
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
