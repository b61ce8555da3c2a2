/**
 * The browser extension and Vinted behind it, scripted for the integration tests: the calls a publish makes
 * (photos, the item, the wardrobe read that checks a create in doubt) answered as devstack/plugin.py's
 * VintedSimulator answers them. `before` runs before each call (a test breaks the connection there).
 */
import type { CallExtension, ExtensionAnswer } from '../../examples/relay.js';
import type { PluginCommandMessage } from '../../src/protocol.js';

type Call = Pick<PluginCommandMessage, 'method' | 'path' | 'payload'>;

interface Item {
  id: number;
  title: string;
  price: string;
  currency: string;
  url: string;
  photo_ids: number[];
}

export class FakeVinted {
  readonly calls: Call[] = [];
  readonly photos = new Map<number, string>();
  readonly items = new Map<number, Item>();
  /** Runs before each call is carried out (awaited). */
  before: ((call: Call, index: number) => Promise<void> | void) | null = null;
  private nextPhoto = 9001;
  private nextItem = 4242;

  constructor(
    readonly userId = 'devstack-1',
    private readonly latencyMs = 20,
  ) {}

  readonly call: CallExtension = async (call, signal) => {
    this.calls.push(call);
    await this.before?.(call, this.calls.length - 1);
    await delay(this.latencyMs, signal);
    return this.answer(call);
  };

  private answer(call: Call): ExtensionAnswer {
    const url = new URL(call.path, 'https://www.vinted.test');
    const payload = (call.payload ?? {}) as Record<string, unknown>;
    if (call.method === 'POST' && url.pathname === '/api/v2/photos') {
      const imageUrl = payload['image_url'];
      if (typeof imageUrl !== 'string') return { status: 400, error: 'invalid payload for photo upload: missing image_url' };
      const id = this.nextPhoto++;
      this.photos.set(id, imageUrl);
      return { status: 200, body: { id, url: imageUrl } };
    }
    if (call.method === 'POST' && url.pathname === '/api/v2/item_upload/items') {
      const item = payload['item'] as Record<string, unknown> | undefined;
      const assigned = (item?.['assigned_photos'] ?? []) as { id: number }[];
      if (item === undefined || assigned.length === 0 || assigned.some((photo) => !this.photos.has(Number(photo.id)))) {
        return { status: 422, error: 'invalid payload for item upload' };
      }
      const id = this.nextItem++;
      const created: Item = {
        id,
        title: String(item['title']),
        price: String(item['price']),
        currency: String(item['currency'] ?? 'EUR'),
        url: `https://www.vinted.test/items/${id}`,
        photo_ids: assigned.map((photo) => Number(photo.id)),
      };
      this.items.set(id, created);
      return { status: 200, body: { item: { id, url: created.url } } };
    }
    const wardrobe = /^\/api\/v2\/wardrobe\/([^/]+)\/items$/.exec(url.pathname);
    if (call.method === 'GET' && wardrobe !== null) {
      if (decodeURIComponent(wardrobe[1] as string) !== this.userId) return { status: 404, error: 'no such member' };
      const items = [...this.items.values()].reverse().map((item) => ({
        id: item.id,
        title: item.title,
        price: { amount: item.price, currency_code: item.currency },
        photos: item.photo_ids.map((id) => ({ id, url: this.photos.get(id) })),
        url: item.url,
      }));
      return { status: 200, body: { items, pagination: { current_page: 1, total_pages: 1, total_entries: items.length } } };
    }
    return { status: 404, error: `unsupported path ${call.method} ${call.path}` };
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
