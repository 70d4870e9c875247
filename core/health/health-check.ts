import { createToken } from '../kernel/token.js';

/**
 * HealthCheck — one aspect of whether this node can serve workspaces (free disk, storage reachable, working area
 * writable, quota backend usable).
 *
 * - `check` is cheap enough to run on every `/readyz` probe (a statfs, a small write, a `head` call) and must
 *   finish promptly once `signal` aborts (the probe's deadline).
 * - It reports; it never throws for an unhealthy condition: a thrown error counts as `failing` with its message.
 * - `critical` checks gate readiness (`/readyz`, gRPC health); the others only show up as `degraded` in status.
 */
export interface HealthCheck {
  /** Stable, kebab-case; shown in `/readyz` output and metrics. */
  readonly name: string;
  readonly critical: boolean;
  check(signal: AbortSignal): Promise<HealthResult>;
}

export type HealthStatus = 'ok' | 'degraded' | 'failing';

export interface HealthResult {
  status: HealthStatus;
  /** Why, for anything but `ok`; shown to operators as it is. */
  reason?: string;
}

export const healthCheckToken = createToken<HealthCheck>('wsd.health.v1', { multiple: true });
