import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';

/** A Node child that writes JSON lines (the worker's log, the bare subscriber's events). */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: string[];
  /** Resolves with the first line (already seen or to come) whose `message` matches. */
  waitForMessage(pattern: RegExp, timeoutMs: number): Promise<{ line: Record<string, unknown>; at: number }>;
  /** Exit code; null when the child was killed by a signal. */
  readonly exit: Promise<number | null>;
}

export function startChild(args: string[], env: NodeJS.ProcessEnv): Child {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${args.join(' ')}`);
  const lines: Array<Record<string, unknown>> = [];
  const arrivals: number[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (hit: { line: Record<string, unknown>; at: number }) => void }> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { message: text };
    }
    const at = performance.now();
    lines.push(line);
    arrivals.push(at);
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(String(line.message))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve({ line, at });
      }
    }
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (text) => {
    stderr.push(text);
    if (stderr.length > 200) stderr.shift();
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return {
    process: child,
    pid: child.pid,
    lines,
    stderr,
    exit,
    waitForMessage(pattern, timeoutMs) {
      const index = lines.findIndex((l) => pattern.test(String(l.message)));
      if (index >= 0) return Promise.resolve({ line: lines[index] as Record<string, unknown>, at: arrivals[index] as number });
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${pattern.source}" line within ${timeoutMs} ms; stderr: ${stderr.slice(-5).join(' | ')}`)),
          timeoutMs,
        );
        waiters.push({
          pattern,
          resolve: (hit) => {
            clearTimeout(timer);
            resolve(hit);
          },
        });
        void exit.then((code) => {
          clearTimeout(timer);
          reject(new Error(`the child exited (${code}) before "${pattern.source}"; stderr: ${stderr.slice(-5).join(' | ')}`));
        });
      });
    },
  };
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: Child, graceMs = 30_000): Promise<number | null> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return child.exit;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  const code = await child.exit;
  clearTimeout(timer);
  return code;
}

export interface MemorySample {
  rssBytes: number;
  peakRssBytes: number;
}

/** Resident set size now and at its peak (VmHWM), from the kernel's own accounting. */
export function readMemory(pid: number): MemorySample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(/\d+/.exec(status.slice(status.indexOf(key)))?.[0] ?? Number.NaN) * 1024;
    return { rssBytes: kb('VmRSS:'), peakRssBytes: kb('VmHWM:') };
  } catch {
    return undefined;
  }
}

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far. */
export function readCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total jiffies of the whole machine, to tell how saturated the cores were. */
export function readMachineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU use over an interval: the child's cores, this process's cores, the whole machine's cores. */
export class CpuWindow {
  private readonly childStart: number;
  private readonly selfStart = process.cpuUsage();
  private readonly machineStart = readMachineCpu();
  private readonly started = performance.now();

  constructor(private readonly pids: readonly number[]) {
    this.childStart = pids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
  }

  finish(): { seconds: number; childCpuSeconds: number; childCores: number; driverCores: number; machineBusyCores: number } {
    const seconds = (performance.now() - this.started) / 1000;
    const childCpuSeconds = this.pids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0) - this.childStart;
    const self = process.cpuUsage(this.selfStart);
    const machine = readMachineCpu();
    const cores = cpus().length;
    const busyShare = (machine.busy - this.machineStart.busy) / Math.max(1, machine.total - this.machineStart.total);
    return {
      seconds,
      childCpuSeconds,
      childCores: childCpuSeconds / seconds,
      driverCores: (self.user + self.system) / 1e6 / seconds,
      machineBusyCores: busyShare * cores,
    };
  }
}
