/**
 * A progress bar on a terminal; elsewhere (CI logs, pipes) one line when done, so the output of a
 * non-interactive run stays readable.
 */
export class ProgressBar {
  private current = 0;
  private lastDrawAt = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(current: number): void {
    this.current = current;
    const now = Date.now();
    if (!this.stream.isTTY || now - this.lastDrawAt < 50) return;
    this.lastDrawAt = now;
    this.stream.write(`\r${this.line()}`);
  }

  done(note = ''): void {
    const seconds = ((Date.now() - this.startedAt) / 1000).toFixed(1);
    const end = `${this.line()} in ${seconds} s${note ? ` ${note}` : ''}`;
    this.stream.write(this.stream.isTTY ? `\r${end}\x1b[K\n` : `${end}\n`);
  }

  private line(): string {
    const width = 30;
    const ratio = this.total === 0 ? 1 : Math.min(1, this.current / this.total);
    const filled = Math.round(ratio * width);
    return `  ${this.label.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(this.current).padStart(String(this.total).length)}/${this.total}`;
  }
}
