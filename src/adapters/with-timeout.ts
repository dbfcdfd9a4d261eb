/**
 * Stops waiting for `promise` after `ms`, rejecting with `onTimeout()`. The call itself is not
 * cancelled (the client libraries offer no way to): it may still complete, and its late outcome is
 * ignored. Used where a client would otherwise wait or retry on its own for minutes, so that the
 * caller's own bounded retries decide.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
