// The launcher is shared with `npm run demo`, which runs from the build output.
export { findFreePort, findPubSubEmulator, startPubSubEmulator, type PubSubEmulator, type StartPubSubEmulatorOptions } from '../../src/dev/pubsub-emulator.js';
