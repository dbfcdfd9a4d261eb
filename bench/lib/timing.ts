import { median, nowNs } from './stats.js';

/** A measured operation: runs `ops` operations and returns a value that keeps the work observable. */
export type Workload = (ops: number) => number;

export interface SideBySide {
  /** Median nanoseconds per operation of each workload. */
  nsPerOp: Record<string, number>;
  /** Every round's ns/op, per workload. */
  rounds: Record<string, number[]>;
  /** Median over rounds of a / b, where a and b ran in the same round. */
  ratio(a: string, b: string): number;
}

/**
 * Runs workloads side by side: each round runs every workload for about `roundMs` (in a rotating
 * order, so none always runs first or after the same neighbour), after one discarded warm-up round.
 * Ratios are taken within a round, then the median over rounds: noise from other processes on the
 * machine hits both sides of a ratio alike.
 */
export function sideBySide(workloads: Record<string, Workload>, options: { rounds: number; roundMs: number }): SideBySide {
  const names = Object.keys(workloads);
  const rounds: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  let sink = 0;
  for (let round = -1; round < options.rounds; round++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(j + Math.max(round, 0)) % names.length] as string;
      const work = workloads[name] as Workload;
      // Calibrate a chunk of at least 5 ms, then repeat chunks until the round's time is used.
      let chunk = 1;
      for (;;) {
        const t0 = nowNs();
        sink += work(chunk);
        if (nowNs() - t0 > 5e6 || chunk > 1e7) break;
        chunk *= 2;
      }
      const deadline = nowNs() + options.roundMs * 1e6;
      let ops = 0;
      let spent = 0;
      while (nowNs() < deadline) {
        const t0 = nowNs();
        sink += work(chunk);
        spent += nowNs() - t0;
        ops += chunk;
      }
      if (round >= 0) (rounds[name] as number[]).push(spent / ops);
    }
  }
  if (sink === Number.MIN_VALUE) process.stdout.write('');
  const nsPerOp = Object.fromEntries(names.map((n) => [n, median(rounds[n] as number[])]));
  return {
    nsPerOp,
    rounds,
    ratio(a, b) {
      const ra = rounds[a] as number[];
      const rb = rounds[b] as number[];
      return median(ra.map((v, i) => v / (rb[i] as number)));
    },
  };
}
