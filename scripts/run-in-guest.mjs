#!/usr/bin/env node
// Runs one command in the QEMU test guest (test/kit/guest-vm.ts) and exits with its status: for running a guest test
// by hand or looking around in the guest kernel. Needs the compiled project (npx tsc -p tsconfig.json) and the
// prepared guest (bash scripts/prepare-guest-kernel.sh).
//   node scripts/run-in-guest.mjs [--disk <size>]... [--timeout <seconds>] -- <command> [args...]
// Sizes: bytes, or with K, M, G. Each --disk attaches a sparse disk: /dev/vda, /dev/vdb, ... Example:
//   node scripts/run-in-guest.mjs --disk 2G --disk 512M -- node --test dist/test/kernel/xfs-quota.guest.js
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const disks = [];
let timeoutMs = 20 * 60_000;
while (args.length > 0 && args[0] !== '--') {
  const option = args.shift();
  const value = args.shift();
  if (option === '--disk' && value) {
    const match = /^(\d+)([KMG]?)$/i.exec(value);
    if (!match) throw new Error(`not a size: ${value}`);
    disks.push({ sizeBytes: Number(match[1]) * 1024 ** ' KMG'.indexOf((match[2] || ' ').toUpperCase()) });
  } else if (option === '--timeout' && value) {
    timeoutMs = Number(value) * 1000;
  } else {
    console.error(`unknown option ${option}; usage: node scripts/run-in-guest.mjs [--disk <size>]... [--timeout <seconds>] -- <command> [args...]`);
    process.exit(2);
  }
}
const command = args.slice(1);
if (command.length === 0) {
  console.error('no command given (after --)');
  process.exit(2);
}
const { runInGuest } = await import(path.join(root, 'dist', 'test', 'kit', 'guest-vm.js'));
const result = await runInGuest({ command, cwd: process.cwd(), disks, timeoutMs, onOutput: (chunk) => process.stdout.write(chunk) });
console.error(`\nrun-in-guest: exit ${result.exitCode}, ${(result.durationMs / 1000).toFixed(1)} s (command started after ${(result.bootMs / 1000).toFixed(1)} s)${process.env.WSD_KEEP_TEMP ? `; $WSD_GUEST_RESULTS is ${result.resultsDir}` : ""}`);
process.exit(result.exitCode);
