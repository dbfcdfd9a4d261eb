import { execFileSync, spawnSync } from 'node:child_process';

/**
 * promtool from the `prometheus` package (`apt-get install prometheus`; .ci/run installs it).
 * A developer machine without it skips the promtool tests, loudly: CI never does.
 */
export function promtoolAvailable(): boolean {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function warnMissing(binary: string, what: string): void {
  const line = '!'.repeat(100);
  console.warn(`\n${line}\n!! ${binary} is not installed: ${what} SKIPPED. Install it with \`apt-get install prometheus\` (CI does).\n${line}\n`);
}

export interface PromtoolResult {
  status: number | null;
  output: string;
}

export function promtool(args: string[], input?: string): PromtoolResult {
  const r = spawnSync('promtool', args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}), timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
