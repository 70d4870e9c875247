import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** VmRSS and VmHWM of a process in MB (10^6 bytes, as the targets), from /proc/<pid>/status. */
export function memoryOf(pid: number): { rssMB: number; hwmMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMB: (kib('VmRSS') * 1024) / 1e6, hwmMB: (kib('VmHWM') * 1024) / 1e6 };
}

/** Resets the peak (VmHWM) to the current RSS (`5` > clear_refs, Linux ≥ 4.0), so a peak belongs to one operation. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Pids of every process below `pid` (its children run tar and zstd in groups of their own, still its descendants). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The ppid is the 2nd field after the command, which is in parentheses and may contain spaces.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * Samples the daemon's RSS (and its children's) every `intervalMs` (a /proc walk costs the measured operation a little CPU: not more often) while an operation runs. The daemon's peak comes
 * from VmHWM (reset before), which catches spikes between samples; the children's is the highest sampled sum.
 */
export async function peakMemoryDuring<T>(pid: number, run: () => Promise<T>, intervalMs = 250): Promise<{ result: T; daemonPeakMB: number; childrenPeakMB: number }> {
  resetPeak(pid);
  let childrenPeakMB = 0;
  const sample = () => {
    const sum = descendants(pid).reduce((total, child) => {
      try {
        return total + memoryOf(child).rssMB;
      } catch {
        return total;
      }
    }, 0);
    childrenPeakMB = Math.max(childrenPeakMB, sum);
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const result = await run();
    return { result, daemonPeakMB: memoryOf(pid).hwmMB, childrenPeakMB };
  } finally {
    clearInterval(timer);
  }
}
