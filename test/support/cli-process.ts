import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built CLI as a child process: JSON log lines from stdout, raw lines from stderr. */
const BIN = fileURLToPath(new URL('../../bin/tributary.js', import.meta.url));

export interface Cli {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: string[];
  waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  /** The whole exit: code, signal, and when it was seen. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const waiters: Array<{ predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { raw: text };
    }
    lines.push(line);
    for (const w of waiters.filter((w) => w.predicate(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, at: Date.now() }));
  const exit = exited.then(({ code }) => code);
  return {
    child,
    lines,
    stderr,
    exit,
    exited,
    waitForLine(predicate, timeoutMs = 30_000) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.join('\n')}; stdout: ${JSON.stringify(lines.slice(-5))}`)),
          timeoutMs,
        );
        waiters.push({
          predicate,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exit.then(() => {
          clearTimeout(timer);
          reject(new Error(`the CLI exited; stderr: ${stderr.join('\n')}`));
        });
      });
    },
  };
}
