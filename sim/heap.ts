// A binary min-heap of simulator events ordered by (t, seq): seq breaks ties in scheduling order,
// which is what makes a run deterministic.

export interface Timed {
  t: number;
  seq: number;
}

function before(a: Timed, b: Timed): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

export class EventHeap<E extends Timed> {
  private readonly items: E[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): E | undefined {
    return this.items[0];
  }

  push(e: E): void {
    const a = this.items;
    let i = a.length;
    a.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, a[p])) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = e;
  }

  pop(): E | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    const n = a.length;
    let i = 0;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(a[r], a[l]) ? r : l;
      if (!before(a[c], last)) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = last;
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}
