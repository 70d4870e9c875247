import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../core/config/package-root.js';
import { groups, type BenchOptions, type Group } from './context.js';
import { parseSize } from './tree.js';

export const usage = `npm run bench -- [options]
  --size <64m|1g|5g>     tree size (default 1g; the issue's figures are for 1g, 5g is the large variant)
  --rounds <n>           rounds of every interleaved figure (default 3)
  --only <groups>        comma-separated subset of: ${groups.join(', ')} (default: all)
  --seed <text>          tree seed (default wsd-bench-1); trees are cached per seed and size
  --increments <n>       increments before "restore after n increments" (default 20, at least 2)
  --workspaces <n>       workspaces for the second start-to-ready figure (default 1000)
  --api-seconds <n>      seconds per load run (default 10)
  --api-concurrency <n>  calls in flight (default 200)
  --api-connections <n>  HTTP/2 connections the load generator spreads them over (default 4)
  --cache-dir <dir>      where generated trees are kept (default .cache/bench/trees, gitignored)
  --results-dir <dir>    where the JSON goes (default bench/results)
  --prepare              generate (or find) the tree and exit
Smoke test: npm run bench -- --size 64m --rounds 1`;

const positive = (name: string, text: string, min = 1): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got "${text}"`);
  return value;
};

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '1g' },
      rounds: { type: 'string', default: '3' },
      only: { type: 'string' },
      seed: { type: 'string', default: 'wsd-bench-1' },
      increments: { type: 'string', default: '20' },
      workspaces: { type: 'string', default: '1000' },
      'api-seconds': { type: 'string', default: '10' },
      'api-concurrency': { type: 'string', default: '200' },
      'api-connections': { type: 'string', default: '4' },
      'cache-dir': { type: 'string' },
      'results-dir': { type: 'string' },
      prepare: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const only = new Set<Group>();
  for (const name of (values.only ?? groups.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(groups as readonly string[]).includes(name)) throw new Error(`--only: unknown group "${name}" (known: ${groups.join(', ')})`);
    only.add(name as Group);
  }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(values.seed)) throw new Error('--seed: letters, digits, ".", "_" and "-" only (it names a cache folder)');
  const root = packageRoot();
  return {
    sizeBytes: parseSize(values.size),
    seed: values.seed,
    rounds: positive('rounds', values.rounds),
    only,
    increments: positive('increments', values.increments, 2),
    workspaces: positive('workspaces', values.workspaces, 0),
    apiSeconds: positive('api-seconds', values['api-seconds']),
    apiConcurrency: positive('api-concurrency', values['api-concurrency']),
    apiConnections: positive('api-connections', values['api-connections']),
    // In the project's gitignored cache, beside the tools: not under bench/, where tsc and the docs check would
    // take the tree's generated .ts and .md files for the project's own.
    cacheDir: path.resolve(values['cache-dir'] ?? path.join(root, '.cache', 'bench', 'trees')),
    resultsDir: path.resolve(values['results-dir'] ?? path.join(root, 'bench', 'results')),
    prepareOnly: values.prepare,
  };
}
