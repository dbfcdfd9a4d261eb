import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { round } from './stats.js';

/** A target from the issue, checked against one figure. */
export interface Target {
  /** e.g. "<= 2", ">= 50000". */
  text: string;
  met: boolean;
}

/** One measured number: printed as `BENCH <name> <value> <unit>` and kept in the JSON results. */
export interface Figure {
  section: string;
  name: string;
  label: string;
  value: number;
  unit: string;
  target?: Target;
  note?: string;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function describeMachine(): Machine {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    // os.cpus() reports the model too, but the kernel's own line is what people quote.
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // Not Linux: os.cpus() it is.
  }
  return { cpus: cpus().length, cpuModel, memoryGiB: round(totalmem() / 2 ** 30, 3), node: process.version, platform: `${process.platform}-${process.arch}` };
}

export function atMost(value: number, limit: number): Target {
  return { text: `<= ${limit}`, met: value <= limit };
}

export function atLeast(value: number, limit: number): Target {
  return { text: `>= ${limit}`, met: value >= limit };
}

/** Collects figures as sections finish; prints each as it comes so a long run shows progress. */
export class Results {
  readonly figures: Figure[] = [];
  readonly details: Record<string, unknown> = {};
  readonly notes: string[] = [];

  add(figure: Figure): void {
    const value = round(figure.value, 4);
    const stored = { ...figure, value };
    this.figures.push(stored);
    process.stdout.write(`BENCH ${figure.name} ${value} ${figure.unit}\n`);
  }

  detail(section: string, data: unknown): void {
    this.details[section] = data;
  }

  note(text: string): void {
    this.notes.push(text);
    process.stdout.write(`note: ${text}\n`);
  }

  /** The figures as a Markdown table, for notes that compare runs. */
  table(): string {
    const rows = [
      '| Section | Figure | Value | Unit | Target |',
      '|---|---|---:|---|---|',
      ...this.figures.map((f) => {
        const target = f.target ? `${f.target.text} ${f.target.met ? '(met)' : '(MISSED)'}` : '';
        return `| ${f.section} | ${f.label}${f.note ? ` (${f.note})` : ''} | ${formatNumber(f.value)} | ${f.unit} | ${target} |`;
      }),
    ];
    return rows.join('\n');
  }

  async write(directory: string, meta: Record<string, unknown>): Promise<{ file: string; latest: string }> {
    await mkdir(directory, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const body = `${JSON.stringify({ ...meta, figures: this.figures, notes: this.notes, details: this.details }, null, 2)}\n`;
    // Timestamped files stay local (ignored by git); latest.json is the one kept in the repository.
    const file = join(directory, `bench-${stamp}.json`);
    const latest = join(directory, 'latest.json');
    await writeFile(file, body);
    await writeFile(latest, body);
    return { file, latest };
  }
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(round(value, 3));
}
