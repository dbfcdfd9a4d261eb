import { PubSub } from '@google-cloud/pubsub';

/*
 * The ceiling of section 4: a subscriber that does nothing but ack, with the worker's own flow
 * control, in a process of its own like the worker. Usage: bare-subscriber <subscription> <count>.
 * Prints JSON lines: {"message":"started"} once pulling, {"message":"done","count":n} at `count`.
 */

const [subscriptionName, expectedText] = process.argv.slice(2);
if (subscriptionName === undefined || expectedText === undefined) {
  process.stderr.write('usage: bare-subscriber <subscription> <count>\n');
  process.exit(64);
}
const expected = Number(expectedText);
const pubsub = new PubSub({ projectId: process.env.BENCH_PROJECT_ID ?? 'test-project' });
const subscription = pubsub.subscription(subscriptionName, {
  flowControl: { maxMessages: Number(process.env.BENCH_FLOW_CONTROL_MESSAGES ?? 10_000), maxBytes: 100 * 1024 * 1024, allowExcessMessages: false },
});
let count = 0;
subscription.on('message', (message: { ack(): void }) => {
  message.ack();
  count++;
  if (count === expected) process.stdout.write(`${JSON.stringify({ message: 'done', count })}\n`);
});
subscription.on('error', (err: Error) => process.stderr.write(`${JSON.stringify({ message: 'subscription error', err: err.message })}\n`));
// The worker reads the subscription's metadata before it listens; so does this, to start alike.
await subscription.getMetadata();
process.stdout.write(`${JSON.stringify({ message: 'started' })}\n`);

process.on('SIGTERM', () => {
  void subscription
    .close()
    .then(() => pubsub.close())
    .finally(() => process.exit(0));
});
