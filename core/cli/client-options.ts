import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDurationMs, parseSizeBytes } from '../config/units.js';
import { WsdError } from '../errors.js';

/** What every `wsd client` subcommand takes, wherever on the command line it was given. */
export interface ClientOptions {
  address: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; serverName?: string; caFile?: string; certFile?: string };
  timeoutMs?: number;
  json: boolean;
  progress: boolean;
}

const defaultAddress = '127.0.0.1:8080';
const optionsHeading = 'Connection and output options (before or after the subcommand):';

/**
 * Adds the connection and output flags to `command`. They are added to `wsd client` and to each of its
 * subcommands: `wsd client --address X init …` and `wsd client init … --address X` both work, and each
 * subcommand's help lists them.
 */
export function addClientOptions(command: Command): Command {
  command.optionsGroup(optionsHeading);
  command
    .addOption(new Option('-a, --address <host:port>', `the daemon's gRPC address (default: ${defaultAddress})`).env('WSD_ADDRESS'))
    .option('--tls-ca <file>', 'CA to trust (enables TLS)')
    .option('--tls-cert <file>', 'client certificate for mutual TLS (with --tls-key)')
    .option('--tls-key <file>', 'client key for mutual TLS (with --tls-cert)')
    .option('--tls-server-name <name>', 'expected server name when it differs from the address')
    .option('--timeout <duration>', 'deadline per call: seconds, or 30s, 5m, 1h30m', parseTimeout)
    .option('--json', 'print the response in the proto JSON mapping, for scripts')
    .option('--no-progress', 'no progress on stderr for init, backup, snapshot and dispose');
  command.optionsGroup('');
  return command;
}

/** `--quota`: bytes, or a size in the config's notation (10GiB). */
export function parseQuota(value: string): number {
  const bytes = parseSizeBytes(value, { plainNumber: true });
  if (bytes === undefined || !Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`"${value}" is not a size: give bytes or a size like 10GiB, 512MiB.`);
  return bytes;
}

function parseTimeout(value: string): number {
  const ms = parseDurationMs(value, { plainNumber: true });
  if (ms === undefined || !(ms > 0) || !Number.isFinite(ms)) throw new InvalidArgumentError(`"${value}" is not a duration: give seconds (above 0) or a duration like 30s, 5m, 1h30m.`);
  return ms;
}

/**
 * The flags of `command` merged with those given to its ancestors: a flag typed after the subcommand wins over the
 * same flag before it, anything typed wins over the environment (`WSD_ADDRESS`), which wins over the default.
 * Certificate files are read here, so a missing file is a usage error naming its flag.
 */
export async function clientOptions(command: Command): Promise<ClientOptions> {
  const chain: Command[] = [];
  for (let c: Command | null = command; c; c = c.parent) chain.push(c);
  const pick = <T>(key: string): T | undefined => {
    for (const source of ['cli', 'env']) {
      const from = chain.find((c) => c.getOptionValueSource(key) === source);
      if (from) return from.getOptionValue(key) as T;
    }
    return undefined;
  };
  const [caFile, certFile, keyFile, serverName] = [pick<string>('tlsCa'), pick<string>('tlsCert'), pick<string>('tlsKey'), pick<string>('tlsServerName')];
  if (Boolean(certFile) !== Boolean(keyFile)) throw new WsdError('INVALID_ARGUMENT', 'give --tls-cert and --tls-key together (a client certificate and its key)');
  const useTls = Boolean(caFile || certFile);
  const timeoutMs = pick<number>('timeout');
  return {
    address: pick<string>('address') ?? defaultAddress,
    ...(useTls
      ? {
          tls: {
            ...(caFile ? { ca: await readFlagFile('--tls-ca', caFile), caFile } : {}),
            ...(certFile ? { cert: await readFlagFile('--tls-cert', certFile), certFile } : {}),
            ...(keyFile ? { key: await readFlagFile('--tls-key', keyFile) } : {}),
            ...(serverName ? { serverName } : {}),
          },
        }
      : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    json: pick<boolean>('json') ?? false,
    // `--no-progress` sets `progress` to false; its implied default (true) has the source 'default'.
    progress: pick<boolean>('progress') ?? true,
  };
}

async function readFlagFile(flag: string, file: string): Promise<Buffer> {
  return readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new WsdError('INVALID_ARGUMENT', `${flag} ${file}: ${error.code === 'ENOENT' ? 'file not found' : error.message}`);
  });
}
