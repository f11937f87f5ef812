// A progress bar on stderr: redrawn in place on a terminal, one plain line per step otherwise
// (so logs and CI output stay readable).

export interface ProgressSink {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(s: string): unknown;
}

/** The bar's text for `done` of `total` steps (pure). */
export function renderBar(done: number, total: number, label: string, width = 30): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const filled = Math.round(frac * width);
  const pct = `${Math.floor(frac * 100)}`.padStart(3);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${done}/${total} ${label}`;
}

export class Progress {
  private done = 0;
  private readonly started = Date.now();

  constructor(private total: number, private readonly sink: ProgressSink = process.stderr) {}

  /** More steps discovered (e.g. scaling after the main run). */
  addSteps(n: number): void {
    this.total += n;
  }

  /** A step starts: shows what is running now. */
  step(label: string): void {
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
    const text = `${renderBar(this.done, this.total, label)} (${elapsed}s)`;
    if (this.sink.isTTY) {
      const cols = this.sink.columns ?? 100;
      this.sink.write(`\r\x1b[K${text.slice(0, cols - 1)}`);
    } else {
      this.sink.write(`bench: ${text}\n`);
    }
  }

  /** The current step finished. */
  tick(): void {
    this.done = Math.min(this.total, this.done + 1);
  }

  /** Clears the bar line (terminal) so the tables print on a clean line. */
  finish(): void {
    if (this.sink.isTTY) this.sink.write('\r\x1b[K');
    else this.sink.write(`bench: done in ${((Date.now() - this.started) / 1000).toFixed(1)}s\n`);
  }
}
