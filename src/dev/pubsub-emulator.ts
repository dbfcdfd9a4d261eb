import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts the real Google Cloud Pub/Sub emulator (a JVM) for tests and for `npm run demo`.
 *
 * The emulator's own start script (`<sdk>/platform/pubsub-emulator/bin/cloud-pubsub-emulator`) is
 * run directly rather than through `gcloud beta emulators pubsub start`: gcloud only puts a Python
 * start-up and process in front of the same script (measured here, to "Server started": 0.4–0.8 s
 * direct, 0.7–1.2 s through gcloud). The script `exec`s java; it runs under a tiny `sh` watchdog
 * (below) in its own process group, so `stop()` kills the whole tree with `process.kill(-pid)`.
 */

export interface PubSubEmulator {
  /** `127.0.0.1:PORT`, the value for `PUBSUB_EMULATOR_HOST` or a client's `apiEndpoint`. */
  readonly host: string;
  /** Process id of the emulator's process group leader. */
  readonly pid: number | undefined;
  /** Kills the emulator's process group and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartPubSubEmulatorOptions {
  /** A fixed port; by default a free one is picked (and re-picked if it was taken meanwhile). */
  port?: number;
  /** How long to wait for "Server started", in ms. Default 60 000. */
  startTimeoutMs?: number;
  /**
   * Kill the emulator at once on SIGINT/SIGTERM/SIGHUP (default true). A caller that shuts down in
   * order on a signal passes false; the watchdog still kills the emulator when this process exits.
   */
  killOnSignals?: boolean;
}

const INSTALL_HELP = [
  'The Google Cloud Pub/Sub emulator is not installed. Install it with one of:',
  '  gcloud components install pubsub-emulator beta          (Cloud SDK installed with its own installer)',
  '  apt-get install -y google-cloud-cli-pubsub-emulator     (Debian/Ubuntu, Google Cloud apt repository)',
  'It also needs a Java runtime (JRE 11+, e.g. apt-get install -y default-jre-headless).',
  'Or point PUBSUB_EMULATOR_BIN at the `cloud-pubsub-emulator` start script.',
].join('\n');

const SCRIPT_IN_SDK = join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
/**
 * Runs the emulator under a small `sh` that is the leader of the new process group. Its stdin is a
 * pipe from this process that is never written: when this process dies, however it dies (even by
 * SIGKILL, or when a vitest worker thread is terminated and the exit hooks never run), the pipe
 * reaches EOF and the watcher kills the whole group, JVM included. `stop()` kills the same group.
 */
const WATCHDOG = [
  // A background job's stdin is /dev/null unless redirected explicitly: keep the pipe as fd 3.
  'exec 3<&0',
  '"$@" </dev/null 3<&- &',
  'emulator=$!',
  '(read _ignored <&3; kill -KILL 0) &',
  'watcher=$!',
  'exec 3<&-',
  // On TERM (stop()), pass it on and stay until the JVM has exited: our exit means it is gone.
  `trap 'kill -TERM "$emulator" 2>/dev/null' TERM INT HUP`,
  'wait "$emulator"',
  'status=$?',
  'while kill -0 "$emulator" 2>/dev/null; do wait "$emulator"; status=$?; done',
  'kill "$watcher" 2>/dev/null',
  'exit "$status"',
].join('\n');

const READY_PATTERN = /Server started, listening on (\d+)/;
const BIND_FAILURE_PATTERN = /BindException|Address already in use/i;
const MAX_LOG_CHARS = 64 * 1024;

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function gcloudSdkRoot(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('gcloud', ['info', '--format=value(installation.sdk_root)'], { timeout: 30_000 }, (error, stdout) => {
      const root = stdout.trim();
      resolve(error || root === '' ? undefined : root);
    });
  });
}

let cachedScript: Promise<string> | undefined;

/**
 * Finds the emulator's start script: `PUBSUB_EMULATOR_BIN`, then the usual Cloud SDK roots, then
 * `gcloud info` (slow: a Python start-up, so it comes last). Throws with install instructions.
 */
export function findPubSubEmulator(): Promise<string> {
  cachedScript ??= (async () => {
    const override = process.env.PUBSUB_EMULATOR_BIN;
    if (override !== undefined && override !== '') {
      if (await isExecutable(override)) return override;
      throw new Error(`PUBSUB_EMULATOR_BIN=${override} is not an executable file.\n${INSTALL_HELP}`);
    }
    const roots = [
      process.env.CLOUDSDK_ROOT_DIR,
      '/usr/lib/google-cloud-sdk',
      '/usr/share/google-cloud-sdk',
      '/opt/google-cloud-sdk',
      '/google-cloud-sdk',
      join(homedir(), 'google-cloud-sdk'),
    ].filter((root): root is string => root !== undefined && root !== '');
    for (const root of roots) {
      const script = join(root, SCRIPT_IN_SDK);
      if (await isExecutable(script)) return script;
    }
    const root = await gcloudSdkRoot();
    if (root !== undefined) {
      const script = join(root, SCRIPT_IN_SDK);
      if (await isExecutable(script)) return script;
    }
    throw new Error(INSTALL_HELP);
  })();
  const pending = cachedScript;
  pending.catch(() => {
    if (cachedScript === pending) cachedScript = undefined;
  });
  return pending;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of a probe server'));
      });
    });
  });
}

/** Every live emulator of this process, killed on exit. */
const live = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

let signalHooksInstalled = false;

function installExitHooks(killOnSignals: boolean): void {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.on('exit', () => {
      for (const child of live) killGroup(child, 'SIGKILL');
    });
  }
  if (!killOnSignals || signalHooksInstalled) return;
  signalHooksInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      for (const child of live) killGroup(child, 'SIGKILL');
      live.clear();
      process.removeListener(signal, onSignal);
      // Nobody else handles this signal: keep Node's default (die by it) after our clean-up.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function unrefStream(stream: unknown): void {
  if (stream instanceof Socket) stream.unref();
}

class EmulatorStartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'EmulatorStartError';
  }
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.removeListener('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function launch(script: string, port: number, startTimeoutMs: number, killOnSignals: boolean): Promise<PubSubEmulator> {
  const host = `127.0.0.1:${port}`;
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'pubsub-emulator-watchdog', script, '--host=127.0.0.1', `--port=${port}`], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: process.env,
  });
  live.add(child);
  installExitHooks(killOnSignals);

  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > MAX_LOG_CHARS) log = log.slice(-MAX_LOG_CHARS);
  };
  // Always drained, also after start-up: a full pipe would block the JVM.
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      killGroup(child, 'SIGTERM');
      if (!(await waitForExit(child, 5_000))) {
        killGroup(child, 'SIGKILL');
        await waitForExit(child, 5_000);
      }
      live.delete(child);
    })();
    return stopped;
  };

  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.removeListener('data', onData);
      child.stderr?.removeListener('data', onData);
      child.removeListener('exit', onExit);
      child.removeListener('error', onError);
    };
    const onData = (): void => {
      if (READY_PATTERN.test(log)) {
        cleanup();
        resolve();
      } else if (BIND_FAILURE_PATTERN.test(log)) {
        // The emulator logs the bind failure and then hangs instead of exiting.
        cleanup();
        const error = new EmulatorStartError(`Pub/Sub emulator could not listen on ${host}. Its output:\n${log}`, true);
        void stop().then(() => reject(error));
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      live.delete(child);
      reject(
        new EmulatorStartError(
          `Pub/Sub emulator (${script}) exited before it started (code ${code}, signal ${signal}). Its output:\n${log}` +
            (/JAVA_HOME|'java' command/.test(log) ? `\n${INSTALL_HELP}` : ''),
          BIND_FAILURE_PATTERN.test(log),
        ),
      );
    };
    const onError = (error: Error): void => {
      cleanup();
      live.delete(child);
      reject(new Error(`Could not run the Pub/Sub emulator (${script}): ${error.message}\n${INSTALL_HELP}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      const error = new Error(`Pub/Sub emulator did not print "Server started" within ${startTimeoutMs} ms on ${host}. Its output:\n${log}`);
      void stop().then(() => reject(error));
    }, startTimeoutMs);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });

  // The emulator never keeps Node alive by itself; the exit hooks kill it if nobody calls stop().
  child.unref();
  unrefStream(child.stdin);
  unrefStream(child.stdout);
  unrefStream(child.stderr);
  return { host, pid: child.pid, stop };
}

/** Starts a Pub/Sub emulator on 127.0.0.1 and resolves once it accepts connections. */
export async function startPubSubEmulator(options: StartPubSubEmulatorOptions = {}): Promise<PubSubEmulator> {
  const script = await findPubSubEmulator();
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const killOnSignals = options.killOnSignals ?? true;
  if (options.port !== undefined) return launch(script, options.port, startTimeoutMs, killOnSignals);
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      return await launch(script, port, startTimeoutMs, killOnSignals);
    } catch (error) {
      // Another process took the port between the probe and the bind: pick another one.
      if (!(error instanceof EmulatorStartError && error.portInUse && attempt < 3)) throw error;
    }
  }
}
