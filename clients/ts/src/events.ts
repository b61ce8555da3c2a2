/** Typed event listeners, shared by the connection and the relay. */

export type Unsubscribe = () => void;

type Handler = (...args: never[]) => void;

/** A handler's error, reported without stopping the other handlers: thrown again outside the emitting code. */
export function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/** Handlers by event name. A handler that throws never stops the others: its error goes to `report`. */
export class Listeners<Events extends { [K in keyof Events]: Handler }> {
  private readonly handlers = new Map<keyof Events, Set<Handler>>();

  constructor(private readonly report: (error: unknown, type: string) => void = rethrowLater) {}

  on<K extends keyof Events>(type: K, handler: Events[K]): Unsubscribe {
    let set = this.handlers.get(type);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(type, set);
    }
    const stored: Handler = handler;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  emit<K extends keyof Events>(type: K, ...args: Parameters<Events[K]>): void {
    const set = this.handlers.get(type);
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        (handler as unknown as (...a: unknown[]) => void)(...args);
      } catch (error) {
        this.report(error, String(type));
      }
    }
  }
}
