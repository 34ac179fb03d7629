// Per-layer progress on stderr when it is a terminal; silent otherwise.

interface Line {
  label: string;
  total: number | undefined;
  done: number;
  state: 'waiting' | 'pulling' | 'done' | 'exists' | 'failed';
}

export class Progress {
  private readonly lines: Line[];
  private readonly tty: boolean;
  private drawn = 0;
  private last = 0;
  private finished = false;

  constructor(n: number, tty = process.stderr.isTTY === true) {
    this.tty = tty && n > 0;
    this.lines = Array.from({ length: n }, () => ({ label: '', total: undefined, done: 0, state: 'waiting' as const }));
  }

  private line(i: number): Line | undefined {
    return this.lines[i];
  }

  start(i: number, digest: string, total: number | undefined): void {
    const l = this.line(i);
    if (!l) return;
    Object.assign(l, { label: digest.replace(/^sha256:/, '').slice(0, 12), total, done: 0, state: 'pulling' });
    this.draw(true);
  }

  skip(i: number, digest: string): void {
    const l = this.line(i);
    if (!l) return;
    Object.assign(l, { label: digest.replace(/^sha256:/, '').slice(0, 12), state: 'exists' });
  }

  add(i: number, n: number): void {
    const l = this.line(i);
    if (!l) return;
    l.done += n;
    this.draw(false);
  }

  reset(i: number): void {
    const l = this.line(i);
    if (l) l.done = 0;
  }

  done(i: number): void {
    const l = this.line(i);
    if (l) l.state = 'done';
    this.draw(true);
  }

  fail(i: number): void {
    const l = this.line(i);
    if (l) l.state = 'failed';
    this.draw(true);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty && this.drawn > 0) this.render();
  }

  private draw(force: boolean): void {
    if (!this.tty || this.finished) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    this.render();
  }

  private render(): void {
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const l of this.lines) {
      let status: string;
      if (l.state === 'exists') status = 'already in the store';
      else if (l.state === 'done') status = `done ${mb(l.total ?? l.done)}`;
      else if (l.state === 'failed') status = 'failed';
      else if (l.state === 'waiting') status = 'waiting';
      else {
        const frac = l.total ? Math.min(1, l.done / l.total) : 0;
        const bar = '='.repeat(Math.round(frac * 24)).padEnd(24, ' ');
        status = `[${bar}] ${mb(l.done)}${l.total ? `/${mb(l.total)}` : ''}`;
      }
      out += `\x1b[2KLayer ${l.label || '…'}: ${status}\n`;
    }
    this.drawn = this.lines.length;
    process.stderr.write(out);
  }
}
