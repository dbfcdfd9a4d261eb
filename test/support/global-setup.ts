import type { TestProject } from 'vitest/node';
import { startPubSubEmulator, type PubSubEmulator } from './pubsub-emulator.js';

/**
 * Vitest globalSetup: one Pub/Sub emulator for the whole run. Tests read its address with
 * `inject('pubsubEmulatorHost')` (and `PUBSUB_EMULATOR_HOST` is set for code that reads the env).
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:PORT` of the Pub/Sub emulator started by test/support/global-setup.ts. */
    pubsubEmulatorHost: string;
  }
}

let emulator: PubSubEmulator | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Never probe the GCE metadata server for a project id or credentials during tests.
  process.env.METADATA_SERVER_DETECTION = 'none';
  emulator = await startPubSubEmulator();
  process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  project.provide('pubsubEmulatorHost', emulator.host);
}

export async function teardown(): Promise<void> {
  const running = emulator;
  emulator = undefined;
  await running?.stop();
}
