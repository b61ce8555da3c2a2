import type { Clock } from '../../src/realtime.js';

interface Timer {
  id: number;
  at: number;
  run: () => void;
}

/** Time that moves only when told; timers run in order, each followed by the promises it settles. */
export class FakeClock implements Clock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, Timer>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.time + Math.max(0, ms), run: callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Timers waiting. */
  get pending(): number {
    return this.timers.size;
  }

  /** In how long the next timer runs (undefined: none). */
  nextIn(): number | undefined {
    const next = this.earliest();
    return next === undefined ? undefined : next.at - this.time;
  }

  /** Move time on by `ms`, running each timer due on the way at its own time. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const next = this.earliest();
      if (next === undefined || next.at > end) break;
      this.timers.delete(next.id);
      this.time = next.at;
      next.run();
      await settle();
    }
    this.time = end;
    await settle();
  }

  /** Run the next timer, whenever it is due. */
  async runNext(): Promise<void> {
    const next = this.earliest();
    if (next === undefined) throw new Error('no timer is waiting');
    await this.advance(next.at - this.time);
  }

  private earliest(): Timer | undefined {
    let found: Timer | undefined;
    for (const timer of this.timers.values()) {
      if (found === undefined || timer.at < found.at || (timer.at === found.at && timer.id < found.id)) found = timer;
    }
    return found;
  }
}

/** Let every promise that can settle now settle (setImmediate runs after the microtasks). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
