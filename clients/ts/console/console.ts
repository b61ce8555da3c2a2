// The devstack's console: a developer's page on @crosslist/client (no framework, no bundler, no copy of the
// protocol). Sign in as a dev user, create and edit products, run jobs and batches and watch them live,
// connect the fake eBay and Etsy, change sync rules, read a product's sales, and "act as the browser
// extension" (the client's relay, running Vinted commands on the devstack's fake Vinted).
//
// Every refusal is shown in the page with the API's code and message (CrosslistApiError), never only in
// the browser's console. Elements the browser test uses carry a data-testid.
import {
  connect,
  createHttpClient,
  CrosslistApiError,
  isFinalStatus,
  relay,
  type Connection,
  type HttpClient,
  type JobView as LiveJob,
  type Marketplace,
  type Relay,
  type Schemas,
  type ServerMessage,
} from '@crosslist/client';
import { byTestId, h, option, replaceChildren, when } from './dom.js';
import { fakeVintedExecutor } from './extension.js';

type Product = Schemas['ProductView'];
type RestJob = Schemas['JobView'];
type JobRequest = Schemas['VintedJobRequest'] | Schemas['EbayJobRequest'] | Schemas['EtsyJobRequest'];
type BatchRequest = Schemas['VintedBatchRequest'] | Schemas['EbayBatchRequest'] | Schemas['EtsyBatchRequest'];

interface DevConfig {
  websocket_url: string;
  websocket_port: number | null;
  demo_image_paths: string[];
  fault_kinds: string[];
}

interface DevToken {
  token: string;
  expires_at: number;
}

/** A job as this page shows it: GET /jobs's view, then what the WebSocket says of it. */
interface JobRow {
  id: string;
  marketplace?: string;
  action?: string;
  product_id?: string | null;
  batch_id?: string | null;
  status: string;
  wait_reason?: string | null;
  wait_until?: string | null;
  waiting_for_job_id?: string | null;
  step?: string | null;
  current_step?: number;
  total_steps?: number;
  attempts?: number;
  max_attempts?: number;
  message?: string;
  result?: Record<string, unknown> | null;
  error?: Record<string, unknown> | null;
  cancel_requested?: boolean;
  created_at?: string;
}

const MARKETPLACES: Marketplace[] = ['vinted', 'ebay', 'etsy'];
const NAMES: Record<string, string> = { vinted: 'Vinted', ebay: 'eBay', etsy: 'Etsy' };
const ACTIONS: Record<Marketplace, string[]> = {
  vinted: ['publish', 'update', 'delete', 'relist', 'sync', 'orders', 'message', 'link_product'],
  ebay: ['publish', 'update', 'delete', 'sync', 'sync_orders'],
  etsy: ['publish', 'update', 'delete', 'sync', 'sync_orders'],
};
const PRODUCT_ACTIONS: Record<Marketplace, string[]> = {
  vinted: ['publish', 'update', 'delete', 'relist'],
  ebay: ['publish', 'update', 'delete'],
  etsy: ['publish', 'update', 'delete'],
};
const ACCOUNT_ACTIONS: Record<Marketplace, string[]> = {
  vinted: ['sync', 'orders'],
  ebay: ['sync', 'sync_orders'],
  etsy: ['sync', 'sync_orders'],
};
// What the demo products carry for each marketplace (devstack.cli's demo_products).
const DEMO_ATTRIBUTES = {
  vinted: { brand_id: 53, size_id: 207, catalog_id: 1839, status_id: 2, color_ids: [12], package_size_id: 2 },
  ebay: { category_id: '11483', condition: 'USED_GOOD' },
  etsy: { taxonomy_id: 429, who_made: 'someone_else', when_made: '2010_2019' },
};
const USER_KEY = 'crosslist.console.user';
const EXTENSION_KEY = 'crosslist.console.extension';
const EXTENSION_VERSION = 'devstack-console/1';
const TOKEN_MARGIN_MS = 5 * 60_000; // a token closer than this to its end is minted again
const MAX_ERRORS = 6;
const MAX_LOG_LINES = 200;

// ---------------------------------------------------------------------------------------- state

const origin = window.location.origin;
let config: DevConfig | null = null;
let user: string | null = null;
let token: DevToken | null = null;
let api: HttpClient | null = null;
let connection: Connection | null = null;
let extension: Relay | null = null;
let products = new Map<string, Product>();
let editing: string | null = null;
const jobs = new Map<string, JobRow>();
const selected = new Set<string>();
// The marketplace and action chosen in each product's row: kept when the rows are drawn again.
const choices = new Map<string, { marketplace: string; action: string }>();
const batches = new Map<
  string,
  { marketplace: string; action: string; total: number; counts: Record<string, number> }
>();

// ---------------------------------------------------------------------------------------- errors

/** Show why something was refused: the API's code and message, or the page's own. */
function showError(error: unknown, doing?: string): void {
  const { code, message, status } = describeError(error);
  const box = byTestId('errors');
  const item = h(
    'div',
    { class: 'error', 'data-testid': 'error', 'data-code': code, role: 'alert' },
    doing ? h('span', { class: 'muted' }, `${doing}:`) : null,
    status ? h('span', { 'data-testid': 'error-status' }, String(status)) : null,
    h('code', { 'data-testid': 'error-code' }, code),
    h('span', { 'data-testid': 'error-message' }, message),
    h('button', { type: 'button', 'data-testid': 'error-dismiss', onclick: () => item.remove() }, '×'),
  );
  box.prepend(item);
  while (box.children.length > MAX_ERRORS) box.lastElementChild?.remove();
}

function describeError(error: unknown): { code: string; message: string; status?: number } {
  if (error instanceof CrosslistApiError) {
    const detail = Array.isArray(error.detail)
      ? error.detail
          .map((one) =>
            typeof one === 'object' && one !== null && 'msg' in one ? String(one.msg) : JSON.stringify(one),
          )
          .join('; ')
      : '';
    const message = detail && !error.message.includes(detail) ? `${error.message} (${detail})` : error.message;
    return { code: error.code, message, status: error.status };
  }
  if (error instanceof PageError) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: 'page_error', message: `${error.name}: ${error.message}` };
  return { code: 'page_error', message: String(error) };
}

/** A refusal of the page itself (e.g. JSON that does not parse), shown like the API's. */
class PageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function notice(text: string): void {
  const box = byTestId('errors');
  const item = h('div', { class: 'notice', 'data-testid': 'notice' }, text);
  box.prepend(item);
  setTimeout(() => item.remove(), 8000);
}

/** Run an action of the user; a refusal is shown in the page. */
async function attempt<T>(doing: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    showError(error, doing);
    return undefined;
  }
}

window.addEventListener('error', (event) => showError(event.error ?? event.message, 'the page failed'));
window.addEventListener('unhandledrejection', (event) => showError(event.reason, 'the page failed'));

// ---------------------------------------------------------------------------------------- devstack calls

/** A devstack route (not the API's): its JSON, or a PageError with the devstack's code and message. */
async function devstack<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(origin + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const said = parsed as { code?: string; message?: string } | undefined;
    throw new PageError(
      said?.code ?? `http_${response.status}`,
      said?.message ?? (text || `${path} answered ${response.status}`),
    );
  }
  return parsed as T;
}

async function freshToken(): Promise<string> {
  if (user === null) throw new PageError('signed_out', 'sign in first');
  if (token === null || token.expires_at * 1000 - Date.now() < TOKEN_MARGIN_MS) {
    token = await devstack<DevToken>('POST', '/dev/token', { user_id: user });
  }
  return token.token;
}

function client(): HttpClient {
  if (api === null) throw new PageError('signed_out', 'sign in first');
  return api;
}

// ---------------------------------------------------------------------------------------- sign-in

async function signIn(userId: string): Promise<void> {
  signOut(false);
  user = userId;
  token = null;
  try {
    await freshToken(); // a refused user id stops here, shown by the caller
  } catch (error) {
    user = null;
    throw error;
  }
  localStorage.setItem(USER_KEY, userId);
  api = createHttpClient({ baseUrl: origin, getToken: freshToken });
  byTestId('signin-form').hidden = true;
  byTestId('session').hidden = false;
  byTestId('signed-in-user').textContent = userId;
  byTestId('app').hidden = false;
  startConnection();
  if (localStorage.getItem(EXTENSION_KEY) === 'on') setExtension(true);
  await Promise.all([
    attempt('loading the products', loadProducts),
    attempt('loading the jobs', loadJobs),
    attempt('loading the marketplaces', loadMarketplaces),
    attempt('loading the sync rules', loadSyncRules),
    attempt('loading the fake Vinted', loadVinted),
  ]);
  await finishConnecting();
}

function signOut(forget = true): void {
  extension?.stop();
  extension = null;
  connection?.close();
  connection = null;
  api = null;
  user = null;
  token = null;
  products = new Map();
  jobs.clear();
  batches.clear();
  selected.clear();
  choices.clear();
  if (forget) {
    localStorage.removeItem(USER_KEY);
    localStorage.removeItem(EXTENSION_KEY);
  }
  byTestId('signin-form').hidden = false;
  byTestId('session').hidden = true;
  byTestId('app').hidden = true;
  byTestId<HTMLInputElement>('extension-switch').checked = false;
  setBadge('connection-state', 'offline', '');
  setBadge('extension-state', 'extension off', '');
  for (const id of [
    'products-list',
    'jobs-list',
    'batches-list',
    'marketplaces-list',
    'sync-rules-list',
    'vinted-account',
  ]) {
    byTestId(id).replaceChildren();
  }
}

function setBadge(testId: string, text: string, kind: '' | 'ok' | 'warn' | 'bad'): void {
  const badge = byTestId(testId);
  badge.textContent = text;
  badge.className = `badge ${kind}`;
  badge.dataset.state = text;
}

// ---------------------------------------------------------------------------------------- the WebSocket

function websocketUrl(): string {
  if (config?.websocket_port) return `ws://${window.location.hostname}:${config.websocket_port}`;
  return config?.websocket_url ?? 'ws://127.0.0.1:8001';
}

function startConnection(): void {
  const live = connect({
    url: websocketUrl(),
    getToken: freshToken,
    fetchJob: (id) => client().get('/jobs/{job_id}', { params: { job_id: id } }),
  });
  connection = live;
  const states = { connecting: 'warn', open: 'ok', reconnecting: 'warn', closed: 'bad' } as const;
  setBadge('connection-state', live.state, states[live.state]);
  live.on('state', (state) => setBadge('connection-state', state, states[state]));
  live.on('connect_failed', ({ attempt: n, retryInMs }) =>
    log(`connection attempt ${n} failed; again in ${(retryInMs / 1000).toFixed(1)} s`),
  );
  live.on('closed', (reason) => {
    if (reason.code === 'too_many_connections') showError(new PageError(reason.code, reason.message), 'the WebSocket');
  });
  live.on('jobs', (store) => mergeLive(store));
  live.on('message', (message) => onMessage(message));
}

/** The connection opens by itself; this only waits a little for it, so that the page shows it open. */
async function finishConnecting(): Promise<void> {
  const live = connection;
  if (live === null || live.state === 'open') return;
  await new Promise<void>((resolve) => {
    const stop = live.on('state', (state) => {
      if (state === 'open' || state === 'closed') {
        stop();
        resolve();
      }
    });
    setTimeout(resolve, 5000);
  });
}

function onMessage(message: ServerMessage): void {
  log(describeMessage(message));
  switch (message.type) {
    case 'job.completed':
    case 'job.failed':
    case 'job.cancelled': {
      const ended = jobs.get(message.job_id);
      if (ended?.product_id) void attempt('refreshing the product', () => refreshProduct(ended.product_id as string));
      if (ended?.marketplace === 'vinted') void attempt('loading the fake Vinted', loadVinted);
      break;
    }
    case 'batch.progress': {
      const batch = batches.get(message.batch_id);
      if (batch) {
        batch.counts = { ...message.counts } as Record<string, number>;
        renderBatches();
      }
      break;
    }
    case 'listing.sold':
      notice(`${NAMES[message.marketplace]} sold ${message.product_id} (order ${message.order_id})`);
      void attempt('refreshing the product', () => refreshProduct(message.product_id));
      break;
    case 'marketplace.reauth_required':
      showError(
        new PageError(
          'reauth_required',
          `${NAMES[message.marketplace]} refused the stored authorization: connect it again`,
        ),
        'marketplaces',
      );
      void attempt('loading the marketplaces', loadMarketplaces);
      break;
    case 'error':
      if (message.code !== 'already_resolved') showError(new PageError(message.code, message.message), 'the WebSocket');
      break;
    default:
      break;
  }
}

function describeMessage(message: ServerMessage): string {
  const job = 'job_id' in message ? ` ${String(message.job_id).slice(0, 8)}` : '';
  switch (message.type) {
    case 'job.progress':
      return `job.progress${job}: ${message.current_step}/${message.total_steps} ${message.message}`;
    case 'plugin.command':
      return `plugin.command${job}: ${message.step} ${message.method} ${message.path}`;
    case 'job.waiting':
      return `job.waiting${job}: ${message.reason}${message.until ? ` until ${message.until}` : ''}`;
    case 'job.retrying':
      return `job.retrying${job}: attempt ${message.attempt} at ${message.next_attempt_at} (${message.error.code})`;
    case 'job.failed':
      return `job.failed${job}: ${message.error.code}: ${message.error.message}`;
    case 'jobs.active':
      return `jobs.active: ${message.jobs.length} active job(s)`;
    case 'plugin.status':
      return `plugin.status: ready=${message.ready} takes_commands=${message.takes_commands}`;
    case 'error':
      return `error ${message.code}: ${message.message}`;
    default:
      return `${message.type}${job}`;
  }
}

function log(line: string): void {
  const list = byTestId('event-log');
  list.prepend(h('li', {}, `${new Date().toLocaleTimeString()} ${line}`));
  while (list.children.length > MAX_LOG_LINES) list.lastElementChild?.remove();
}

// ---------------------------------------------------------------------------------------- the extension

function setExtension(on: boolean): void {
  byTestId<HTMLInputElement>('extension-switch').checked = on;
  localStorage.setItem(EXTENSION_KEY, on ? 'on' : 'off');
  extension?.stop();
  extension = null;
  if (!on || connection === null || user === null) {
    setBadge('extension-state', 'extension off', '');
    return;
  }
  setBadge('extension-state', 'extension starting', 'warn');
  const bridge = relay(connection, fakeVintedExecutor(origin, user, log), {
    extensionVersion: EXTENSION_VERSION,
    sessionStorage: window.sessionStorage,
  });
  extension = bridge;
  bridge.on('status', (message) => {
    setBadge(
      'extension-state',
      message.takes_commands ? 'extension ready' : 'extension not taking commands',
      message.takes_commands ? 'ok' : 'warn',
    );
    void attempt('loading the sync rules', loadSyncRules); // Vinted's rules run while a tab takes commands
  });
  bridge.on('command', (command) => setBadge('extension-state', `running ${command.step}`, 'ok'));
  bridge.on('answered', (command, result) => {
    setBadge('extension-state', 'extension ready', 'ok');
    log(`extension answered ${command.step}: ${result.success ? 'ok' : `failed (${result.status ?? 'no status'})`}`);
  });
  bridge.on('command_lost', ({ command }) => log(`extension: the socket of ${command.step} closed before its answer`));
  bridge.on('timeout', (command) => log(`extension: ${command.step} ran out of time`));
  bridge.on('executor_error', (command, error) => showError(error, `the extension running ${command.step}`));
  bridge.on('refused', (error, command) =>
    log(`the backend refused the answer to ${command?.step ?? error.request_id}: ${error.code}`),
  );
}

// ---------------------------------------------------------------------------------------- products

async function loadProducts(): Promise<void> {
  const found = new Map<string, Product>();
  let offset = 0;
  for (;;) {
    const page = await client().get('/products', { query: { limit: 100, offset } });
    for (const product of page.items) found.set(product.id, product);
    offset += page.items.length;
    if (page.next_offset === null || page.next_offset === undefined || page.items.length === 0) break;
  }
  products = found;
  renderProducts();
}

async function refreshProduct(id: string): Promise<void> {
  try {
    products.set(id, await client().get('/products/{product_id}', { params: { product_id: id } }));
  } catch (error) {
    if (error instanceof CrosslistApiError && error.status === 404) products.delete(id);
    else throw error;
  }
  renderProducts();
}

function demoImageUrls(): string[] {
  return (config?.demo_image_paths ?? []).map((path) => origin + path);
}

function renderDemoImages(): void {
  replaceChildren(
    byTestId('demo-images'),
    demoImageUrls().map((url, index) =>
      h(
        'label',
        {},
        h('input', { type: 'checkbox', name: 'demo_image', value: url, 'data-testid': `demo-image-${index + 1}` }),
        h('img', { src: url, alt: `demo image ${index + 1}` }),
      ),
    ),
  );
}

function resetProductForm(): void {
  editing = null;
  const form = byTestId<HTMLFormElement>('product-form');
  form.reset();
  (form.elements.namedItem('marketplace_attributes') as HTMLTextAreaElement).value = JSON.stringify(
    DEMO_ATTRIBUTES,
    null,
    2,
  );
  byTestId('product-save').textContent = 'Create product';
}

function editProduct(product: Product): void {
  editing = product.id;
  const form = byTestId<HTMLFormElement>('product-form');
  const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLTextAreaElement;
  for (const name of ['title', 'price', 'currency', 'brand', 'size', 'condition', 'sku', 'description'] as const) {
    field(name).value = String(product[name] ?? '');
  }
  field('quantity').value = String(product.quantity);
  const demo = new Set(demoImageUrls());
  for (const box of form.querySelectorAll<HTMLInputElement>('input[name="demo_image"]')) {
    box.checked = product.image_urls.includes(box.value);
  }
  field('image_urls').value = product.image_urls.filter((url) => !demo.has(url)).join('\n');
  field('marketplace_attributes').value = JSON.stringify(product.marketplace_attributes, null, 2);
  byTestId('product-save').textContent = 'Save changes';
  form.scrollIntoView({ behavior: 'smooth' });
}

function productFromForm(): Schemas['ProductCreate'] {
  const form = byTestId<HTMLFormElement>('product-form');
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  const imageUrls = [
    ...[...form.querySelectorAll<HTMLInputElement>('input[name="demo_image"]:checked')].map((box) => box.value),
    ...value('image_urls')
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean),
  ];
  let attributes: Record<string, Record<string, unknown>> = {};
  if (value('marketplace_attributes')) {
    try {
      attributes = JSON.parse(value('marketplace_attributes')) as Record<string, Record<string, unknown>>;
    } catch (error) {
      throw new PageError('invalid_json', `the marketplace attributes are not JSON: ${String(error)}`);
    }
  }
  const optional = (name: string) => value(name) || null;
  return {
    title: value('title'),
    description: value('description'),
    price: value('price'),
    currency: value('currency'),
    quantity: Number(value('quantity') || '1'),
    brand: optional('brand'),
    size: optional('size'),
    condition: optional('condition'),
    sku: optional('sku'),
    image_urls: imageUrls,
    marketplace_attributes: attributes,
  };
}

async function saveProduct(): Promise<void> {
  const body = productFromForm();
  const product = editing
    ? await client().patch('/products/{product_id}', { params: { product_id: editing }, body })
    : await client().post('/products', { body });
  products.set(product.id, product);
  notice(editing ? `saved ${product.title}` : `created ${product.title}`);
  resetProductForm();
  renderProducts();
}

function renderProducts(): void {
  const rows = [...products.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  replaceChildren(byTestId('products-list'), rows.map(productRow));
  byTestId('batch-selected').textContent = String(selected.size);
  scheduleJobsRender(); // the jobs show their product's title
}

function productRow(product: Product): HTMLTableRowElement {
  const chosen = choices.get(product.id) ?? { marketplace: 'vinted', action: 'publish' };
  const marketplace = h(
    'select',
    { 'data-testid': 'product-job-marketplace' },
    ...MARKETPLACES.map((m) => option(m, NAMES[m], m === chosen.marketplace)),
  );
  const action = h('select', { 'data-testid': 'product-job-action' });
  const remember = () => choices.set(product.id, { marketplace: marketplace.value, action: action.value });
  const fillActions = (wanted: string) => {
    replaceChildren(
      action,
      PRODUCT_ACTIONS[marketplace.value as Marketplace].map((a) => option(a, a, a === wanted)),
    );
    remember();
  };
  marketplace.addEventListener('change', () => fillActions(action.value));
  action.addEventListener('change', remember);
  fillActions(chosen.action);
  const select = h('input', { type: 'checkbox', 'data-testid': 'product-select' });
  select.checked = selected.has(product.id);
  select.addEventListener('change', () => {
    if (select.checked) selected.add(product.id);
    else selected.delete(product.id);
    byTestId('batch-selected').textContent = String(selected.size);
  });
  return h(
    'tr',
    { 'data-testid': 'product-row', 'data-product-id': product.id },
    h('td', {}, select),
    h(
      'td',
      {},
      h('strong', { 'data-testid': 'product-row-title' }, product.title),
      h('div', { class: 'muted' }, `${product.price} ${product.currency} · ${product.id}`),
      product.delete_requested_at ? h('div', { class: 'muted' }, 'being deleted once delisted') : null,
    ),
    h(
      'td',
      { 'data-testid': 'product-row-photos', 'data-count': product.image_urls.length },
      ...product.image_urls.map((url) => h('img', { src: url, alt: '' })),
    ),
    h(
      'td',
      { 'data-testid': 'product-listings' },
      ...product.listings.map((listing) =>
        h(
          'div',
          {},
          listing.url
            ? h(
                'a',
                {
                  href: listing.url,
                  target: '_blank',
                  rel: 'noreferrer',
                  'data-testid': 'listing-link',
                  'data-marketplace': listing.marketplace,
                  'data-status': listing.status,
                },
                `${NAMES[listing.marketplace] ?? listing.marketplace} ${listing.external_id}`,
              )
            : `${NAMES[listing.marketplace] ?? listing.marketplace} ${listing.external_id}`,
          h('span', { class: 'muted' }, ` ${listing.status}`),
        ),
      ),
    ),
    h(
      'td',
      {},
      marketplace,
      action,
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'product-job-run',
          onclick: () =>
            void attempt(`${action.value} on ${NAMES[marketplace.value]}`, () =>
              startJob({ marketplace: marketplace.value, action: action.value, product_id: product.id } as JobRequest),
            ),
        },
        'Run',
      ),
    ),
    h(
      'td',
      {},
      h('button', { type: 'button', 'data-testid': 'product-edit', onclick: () => editProduct(product) }, 'Edit'),
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'product-sales',
          onclick: () => void attempt('loading the sales', () => showSales(product)),
        },
        'Sales',
      ),
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'product-delete',
          onclick: () => void attempt(`deleting ${product.title}`, () => deleteProduct(product)),
        },
        'Delete',
      ),
    ),
  );
}

async function deleteProduct(product: Product): Promise<void> {
  const live = product.listings.some((listing) => ['active', 'hidden', 'reserved'].includes(listing.status));
  if (live && !window.confirm(`${product.title} is listed: delist it everywhere, then delete it?`)) return;
  const answer = await client().delete('/products/{product_id}', {
    params: { product_id: product.id },
    query: live ? { delist: true } : {},
  });
  if (answer && typeof answer === 'object' && 'jobs' in answer) {
    for (const job of answer.jobs) addRestJob(job);
    notice(`${product.title} is deleted once it is delisted`);
    await refreshProduct(product.id);
  } else {
    products.delete(product.id);
    renderProducts();
  }
}

async function showSales(product: Product): Promise<void> {
  const page = await client().get('/products/{product_id}/sales', { params: { product_id: product.id } });
  const box = byTestId('sales-log');
  box.hidden = false;
  replaceChildren(box, [
    h(
      'h3',
      {},
      `Sales of ${product.title}`,
      ' ',
      h('button', { type: 'button', onclick: () => (box.hidden = true) }, 'Close'),
    ),
    page.items.length === 0 ? h('p', { class: 'muted', 'data-testid': 'sales-empty' }, 'No sale yet.') : null,
    ...page.items.map((sale) =>
      h(
        'div',
        { class: 'card', 'data-testid': 'sale' },
        h('strong', {}, `${NAMES[sale.marketplace] ?? sale.marketplace} order ${sale.external_order_id}`),
        ` × ${sale.quantity}, sold ${when(sale.sold_at)}, seen ${Math.round(sale.detection_delay_seconds)} s later`,
        h(
          'ul',
          {},
          ...sale.actions.map((action) =>
            h(
              'li',
              { 'data-testid': 'sale-action' },
              `${NAMES[action.marketplace] ?? action.marketplace}: ${action.action} ${action.status}`,
              action.reason ? ` (${action.reason})` : '',
              action.error ? ` ${JSON.stringify(action.error)}` : '',
              action.delisted_after_sale_seconds !== null
                ? `, ${Math.round(action.delisted_after_sale_seconds)} s after the sale`
                : '',
            ),
          ),
        ),
      ),
    ),
  ]);
}

// ---------------------------------------------------------------------------------------- jobs

async function startJob(request: JobRequest): Promise<void> {
  const job = await client().post('/jobs', { body: request });
  addRestJob(job);
  notice(`${job.action} on ${NAMES[job.marketplace] ?? job.marketplace} started (job ${job.id.slice(0, 8)})`);
}

async function startBatch(request: BatchRequest): Promise<void> {
  const batch = await client().post('/jobs/batch', { body: request });
  batches.set(batch.id, {
    marketplace: batch.marketplace,
    action: batch.action,
    total: batch.total_jobs,
    counts: { ...batch.counts },
  });
  for (const job of batch.jobs) addRestJob(job);
  for (const refused of batch.refused)
    showError(new PageError(refused.code, `${refused.product_id}: ${refused.message}`), 'the batch');
  renderBatches();
}

async function loadJobs(): Promise<void> {
  const page = await client().get('/jobs', { query: { limit: 50 } });
  for (const job of page.items) addRestJob(job, true);
}

function addRestJob(job: RestJob, fillOnly = false): void {
  const known = jobs.get(job.id);
  const row: JobRow = {
    id: job.id,
    marketplace: job.marketplace,
    action: job.action,
    product_id: job.product_id,
    status: job.status,
    wait_reason: job.wait_reason,
    wait_until: job.wait_until,
    waiting_for_job_id: job.waiting_for_job_id ?? null,
    current_step: job.current_step,
    total_steps: job.total_steps,
    attempts: job.attempts,
    max_attempts: job.max_attempts,
    result: job.result ?? null,
    error: (job.error as Record<string, unknown> | null) ?? null,
    cancel_requested: job.cancel_requested,
    created_at: job.created_at,
  };
  if (known === undefined) jobs.set(job.id, row);
  else if (fillOnly || isFinalStatus(known.status)) {
    // What the WebSocket said is newer: only what it does not say is taken.
    for (const [key, value] of Object.entries(row)) {
      if ((known as unknown as Record<string, unknown>)[key] === undefined)
        (known as unknown as Record<string, unknown>)[key] = value;
    }
  } else Object.assign(known, row);
  scheduleJobsRender();
}

function mergeLive(store: ReadonlyMap<string, LiveJob>): void {
  for (const live of store.values()) {
    const known = jobs.get(live.job_id);
    if (known !== undefined && isFinalStatus(known.status) && !isFinalStatus(live.status)) continue;
    const row: JobRow = known ?? { id: live.job_id, status: live.status, created_at: new Date().toISOString() };
    for (const [key, value] of Object.entries(live)) {
      if (key === 'job_id' || key === 'updated_by' || value === undefined) continue;
      (row as unknown as Record<string, unknown>)[key] = value;
    }
    jobs.set(row.id, row);
    if (row.marketplace === undefined) void fillJob(row.id);
  }
  scheduleJobsRender();
}

const filling = new Set<string>();
async function fillJob(id: string): Promise<void> {
  if (filling.has(id) || api === null) return;
  filling.add(id);
  try {
    addRestJob(await client().get('/jobs/{job_id}', { params: { job_id: id } }), true);
  } catch {
    // shown without its marketplace until the next list
  }
}

let renderQueued = false;
function scheduleJobsRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderJobs();
  });
}

function renderJobs(): void {
  const list = byTestId('jobs-list');
  const rows = [...jobs.values()].sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''));
  const existing = new Map<string, HTMLTableRowElement>();
  for (const tr of list.querySelectorAll<HTMLTableRowElement>('tr[data-job-id]'))
    existing.set(tr.dataset.jobId ?? '', tr);
  rows.forEach((job, index) => {
    const tr = existing.get(job.id) ?? jobRow(job.id);
    existing.delete(job.id);
    updateJobRow(tr, job);
    if (list.children[index] !== tr) list.insertBefore(tr, list.children[index] ?? null);
  });
  for (const stale of existing.values()) stale.remove();
}

function jobRow(id: string): HTMLTableRowElement {
  const cancel = h('button', { type: 'button', 'data-testid': 'job-cancel' }, 'Cancel');
  cancel.addEventListener(
    'click',
    () =>
      void attempt('cancelling the job', async () => {
        addRestJob(await client().post('/jobs/{job_id}/cancel', { params: { job_id: id } }));
      }),
  );
  return h(
    'tr',
    { 'data-testid': 'job-row', 'data-job-id': id },
    h('td', { 'data-testid': 'job-title' }),
    h('td', { 'data-testid': 'job-status' }),
    h(
      'td',
      {},
      h(
        'div',
        {
          class: 'progress',
          'data-testid': 'job-progress',
          role: 'progressbar',
          'aria-valuemin': 0,
          'aria-valuemax': 100,
        },
        h('div', {}),
      ),
      h('div', { class: 'muted', 'data-testid': 'job-step' }),
    ),
    h('td', { 'data-testid': 'job-detail' }),
    h('td', {}, cancel),
  );
}

function percent(job: JobRow): number {
  if (job.status === 'completed') return 100;
  if (!job.total_steps) return 0;
  return Math.min(100, Math.floor(((job.current_step ?? 0) / job.total_steps) * 100));
}

function updateJobRow(tr: HTMLTableRowElement, job: JobRow): void {
  const cell = (id: string) => byTestId(id, tr);
  const product = job.product_id ? products.get(job.product_id) : undefined;
  const what = `${job.action ?? 'job'} on ${NAMES[job.marketplace ?? ''] ?? job.marketplace ?? '?'}`;
  replaceChildren(cell('job-title'), [
    h('strong', {}, what),
    h('div', { class: 'muted' }, product ? product.title : (job.product_id ?? 'the whole account')),
    h('div', { class: 'muted' }, job.id),
  ]);
  tr.dataset.status = job.status;
  tr.dataset.marketplace = job.marketplace ?? '';
  tr.dataset.action = job.action ?? '';
  tr.dataset.productId = job.product_id ?? '';
  const status = cell('job-status');
  status.textContent = job.cancel_requested && !isFinalStatus(job.status) ? `${job.status} (cancelling)` : job.status;
  status.className = `status-${job.status}`;
  const value = percent(job);
  const bar = cell('job-progress');
  bar.dataset.percent = String(value);
  bar.setAttribute('aria-valuenow', String(value));
  bar.className = `progress${job.status === 'completed' ? ' done' : ''}${job.status === 'failed' || job.status === 'cancelled' ? ' failed' : ''}`;
  (bar.firstElementChild as HTMLElement).style.width = `${value}%`;
  cell('job-step').textContent =
    job.status === 'completed'
      ? `${job.total_steps ?? ''}/${job.total_steps ?? ''} done`.replace(/^\/ /, '')
      : `${job.current_step ?? 0}/${job.total_steps ?? '?'} ${job.message ?? job.step ?? ''}`.trim();
  replaceChildren(cell('job-detail'), jobDetail(job));
  const cancel = byTestId<HTMLButtonElement>('job-cancel', tr);
  cancel.hidden = isFinalStatus(job.status);
  cancel.disabled = job.cancel_requested === true;
}

function jobDetail(job: JobRow): (Node | string | null)[] {
  const url = job.result && typeof job.result.url === 'string' ? job.result.url : null;
  const error = job.error && typeof job.error === 'object' ? job.error : null;
  const parts: (Node | string | null)[] = [];
  if (job.status === 'completed' && url) {
    parts.push(h('a', { href: url, target: '_blank', rel: 'noreferrer', 'data-testid': 'job-result-link' }, url));
  }
  if (!isFinalStatus(job.status) && job.wait_reason) {
    parts.push(h('div', { 'data-testid': 'job-wait', 'data-reason': job.wait_reason }, waitText(job)));
  }
  if (error && (job.status === 'failed' || job.wait_reason === 'backoff')) {
    parts.push(
      h(
        'div',
        { 'data-testid': 'job-error', class: 'status-failed' },
        h('code', {}, String(error.code ?? 'error')),
        ` ${String(error.message ?? '')}`,
      ),
    );
  }
  return parts;
}

function waitText(job: JobRow): string {
  const until = job.wait_until ? ` ${when(job.wait_until)}` : '';
  const market = NAMES[job.marketplace ?? ''] ?? job.marketplace ?? 'the marketplace';
  switch (job.wait_reason) {
    case 'pacing':
      return `waiting for its turn (Vinted calls are spaced out): goes on${until}`;
    case 'backoff':
      return `a step failed: trying again${until} (attempt ${(job.attempts ?? 0) + 1} of ${job.max_attempts ?? '?'})`;
    case 'queued':
      return `queued behind job ${job.waiting_for_job_id?.slice(0, 8) ?? 'another job'} (one job at a time per marketplace)`;
    case 'rate_limited':
      return `${market} asked to slow down: paused until${until}`;
    case 'reauth_required':
      return `${market} must be connected again (Marketplaces below)`;
    case 'challenge':
      return job.wait_until ? `Vinted showed a captcha: paused until${until}` : 'the extension shows a Vinted captcha';
    case 'no_plugin':
      return 'no extension: turn on "Act as the browser extension" (or open a tab that has it)';
    case 'plugin_not_ready':
      return 'a tab is open but its extension is not ready';
    case 'plugin_logged_out':
      return 'the extension is logged out of Vinted';
    default:
      return `waiting (${job.wait_reason})${until}`;
  }
}

function renderBatches(): void {
  replaceChildren(
    byTestId('batches-list'),
    [...batches.entries()].map(([id, batch]) => {
      const done = ['completed', 'failed', 'cancelled'].reduce((sum, status) => sum + (batch.counts[status] ?? 0), 0);
      return h(
        'div',
        { class: 'card', 'data-testid': 'batch-row', 'data-batch-id': id },
        h('strong', {}, `batch ${batch.action} on ${NAMES[batch.marketplace] ?? batch.marketplace}`),
        ` ${done}/${batch.total} ended · `,
        Object.entries(batch.counts)
          .filter(([, count]) => count > 0)
          .map(([status, count]) => `${status} ${count}`)
          .join(', '),
      );
    }),
  );
}

function jobFormRequest(form: HTMLFormElement): JobRequest {
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  const request: Record<string, unknown> = { marketplace: value('marketplace'), action: value('action') };
  if (value('product_id')) request.product_id = value('product_id');
  if (value('params')) {
    try {
      request.params = JSON.parse(value('params'));
    } catch (error) {
      throw new PageError('invalid_json', `the params are not JSON: ${String(error)}`);
    }
  }
  return request as unknown as JobRequest;
}

// ---------------------------------------------------------------------------------------- marketplaces

async function loadMarketplaces(): Promise<void> {
  const statuses = await client().get('/marketplaces');
  const box = byTestId('marketplaces-list');
  const cards: HTMLElement[] = [
    h(
      'div',
      { class: 'card', 'data-testid': 'marketplace-row', 'data-marketplace': 'vinted', 'data-status': 'extension' },
      h('strong', {}, 'Vinted'),
      ' runs in the browser extension: turn on the switch at the top to let this tab run its commands.',
      ...accountButtons('vinted'),
    ),
  ];
  for (const status of statuses) {
    const marketplace = status.marketplace as 'ebay' | 'etsy'; // Vinted has no account to connect
    const connected = status.status === 'connected';
    const card = h(
      'div',
      {
        class: 'card',
        'data-testid': 'marketplace-row',
        'data-marketplace': marketplace,
        'data-status': status.status,
      },
      h('strong', {}, NAMES[marketplace] ?? marketplace),
      ' ',
      h(
        'span',
        {
          class: `badge ${connected ? 'ok' : status.status === 'reauth_required' ? 'bad' : ''}`,
          'data-testid': 'marketplace-status',
        },
        status.status,
      ),
      status.reconnect_soon ? h('span', { class: 'muted' }, ' (connect it again soon)') : null,
      ' ',
      h(
        'button',
        {
          type: 'button',
          'data-testid': `connect-${marketplace}`,
          onclick: () => void attempt(`connecting ${NAMES[marketplace]}`, () => startConnecting(marketplace)),
        },
        connected ? 'Connect again' : 'Connect',
      ),
      connected
        ? h(
            'button',
            {
              type: 'button',
              'data-testid': `disconnect-${marketplace}`,
              onclick: () =>
                void attempt(`disconnecting ${NAMES[marketplace]}`, async () => {
                  await client().delete('/marketplaces/{marketplace}', { params: { marketplace } });
                  await Promise.all([loadMarketplaces(), loadSyncRules()]);
                }),
            },
            'Disconnect',
          )
        : null,
      ...(connected ? accountButtons(marketplace) : []),
    );
    cards.push(card);
    if (connected && (marketplace === 'ebay' || marketplace === 'etsy')) {
      void attempt(`loading the ${NAMES[marketplace]} settings`, () => renderSettings(card, marketplace));
    }
  }
  replaceChildren(box, cards);
}

function accountButtons(marketplace: Marketplace): HTMLElement[] {
  return ACCOUNT_ACTIONS[marketplace].map((action) =>
    h(
      'button',
      {
        type: 'button',
        'data-testid': `account-${action}-${marketplace}`,
        onclick: () =>
          void attempt(`${action} on ${NAMES[marketplace]}`, () => startJob({ marketplace, action } as JobRequest)),
      },
      action === 'sync' ? 'Sync listings' : 'Import orders',
    ),
  );
}

/** The OAuth steps a web app takes: the marketplace sends the browser back here with a code and a state. */
async function startConnecting(marketplace: 'ebay' | 'etsy'): Promise<void> {
  const returnTo = origin + window.location.pathname;
  const started = await client().get('/marketplaces/{marketplace}/connect', {
    params: { marketplace },
    query: { return_to: returnTo },
  });
  window.location.assign(started.authorization_url);
}

/** Back from the marketplace: complete the connection with the code and state it gave. */
async function completeConnecting(): Promise<void> {
  const query = new URLSearchParams(window.location.search);
  const marketplace = query.get('marketplace');
  const state = query.get('state');
  if (marketplace === null || state === null) return;
  window.history.replaceState(null, '', window.location.pathname);
  const code = query.get('code');
  if (code === null) {
    throw new PageError(
      query.get('error') ?? 'connection_refused',
      `${NAMES[marketplace] ?? marketplace} did not connect: ${query.get('error_description') ?? query.get('error') ?? 'no code came back'}`,
    );
  }
  await client().post('/marketplaces/{marketplace}/connect', {
    params: { marketplace: marketplace as 'ebay' | 'etsy' },
    body: { code, state },
  });
  notice(`${NAMES[marketplace] ?? marketplace} connected`);
  await Promise.all([loadMarketplaces(), loadSyncRules()]);
}

async function renderSettings(card: HTMLElement, marketplace: 'ebay' | 'etsy'): Promise<void> {
  const view = await client().get(`/marketplaces/${marketplace}/settings`);
  const choices = view.choices as Record<string, { id: string | number; name: string }[]>;
  const current = view.settings as Record<string, unknown>;
  const selects = Object.entries(choices).map(([field, options]) => {
    const select = h(
      'select',
      { name: field, 'data-testid': `setting-${marketplace}-${field}` },
      option('', '—'),
      ...options.map((one) =>
        option(String(one.id), `${one.name} (${one.id})`, String(current[field] ?? '') === String(one.id)),
      ),
    );
    return h('label', {}, field, select);
  });
  const save = async (firstOfEach: boolean) => {
    const body: Record<string, string | number | null> = {};
    for (const [field, options] of Object.entries(choices)) {
      const select = card.querySelector<HTMLSelectElement>(`select[name="${field}"]`);
      const chosen = firstOfEach && !select?.value ? options[0]?.id : select?.value;
      if (chosen === undefined || chosen === '') continue;
      body[field] = typeof options[0]?.id === 'number' ? Number(chosen) : String(chosen);
    }
    await client().put(`/marketplaces/${marketplace}/settings`, { body: body as never });
    notice(`${NAMES[marketplace]} settings saved`);
    await loadMarketplaces();
  };
  card.append(
    h(
      'div',
      { 'data-testid': `settings-${marketplace}` },
      view.missing_for_publish.length
        ? h(
            'p',
            { class: 'status-waiting', 'data-testid': `settings-missing-${marketplace}` },
            `To publish, choose: ${view.missing_for_publish.join(', ')}`,
          )
        : h('p', { class: 'muted', 'data-testid': `settings-complete-${marketplace}` }, 'Ready to publish.'),
      view.choices_error ? h('p', { class: 'status-failed' }, view.choices_error) : null,
      h('div', { class: 'toolbar' }, ...selects),
      h(
        'button',
        {
          type: 'button',
          'data-testid': `settings-save-${marketplace}`,
          onclick: () => void attempt('saving the settings', () => save(false)),
        },
        'Save settings',
      ),
      h(
        'button',
        {
          type: 'button',
          'data-testid': `settings-defaults-${marketplace}`,
          onclick: () => void attempt('saving the settings', () => save(true)),
        },
        'Use the first choice of each',
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------- sync rules

async function loadSyncRules(): Promise<void> {
  const { rules } = await client().get('/sync-rules');
  replaceChildren(
    byTestId('sync-rules-list'),
    rules.map((rule) =>
      h(
        'tr',
        { 'data-testid': 'sync-rule', 'data-marketplace': rule.marketplace, 'data-kind': rule.kind },
        h(
          'td',
          {},
          NAMES[rule.marketplace] ?? rule.marketplace,
          rule.connected ? '' : h('span', { class: 'muted' }, ' (not connected)'),
        ),
        h('td', {}, `${rule.kind} (${rule.action})`),
        h(
          'td',
          {},
          h('input', { type: 'checkbox', name: 'enabled', checked: rule.enabled, 'data-testid': 'sync-rule-enabled' }),
        ),
        h(
          'td',
          {},
          h('input', {
            type: 'number',
            name: 'interval_minutes',
            min: 5,
            value: rule.interval_minutes,
            'data-testid': 'sync-rule-interval',
          }),
        ),
        h(
          'td',
          { class: 'muted' },
          rule.last_run_at ? when(rule.last_run_at) : 'never',
          rule.last_outcome
            ? ` · ${rule.last_outcome.code}${rule.last_outcome.message ? `: ${rule.last_outcome.message}` : ''}`
            : '',
        ),
        h('td', { class: 'muted' }, rule.next_run_at ? when(rule.next_run_at) : ''),
      ),
    ),
  );
}

async function saveSyncRules(): Promise<void> {
  const rules = [...byTestId('sync-rules-list').querySelectorAll<HTMLTableRowElement>('tr')].map((tr) => ({
    marketplace: tr.dataset.marketplace as Marketplace,
    kind: tr.dataset.kind as 'listings' | 'orders',
    enabled: tr.querySelector<HTMLInputElement>('input[name="enabled"]')?.checked ?? true,
    interval_minutes: Number(tr.querySelector<HTMLInputElement>('input[name="interval_minutes"]')?.value),
  }));
  await client().put('/sync-rules', { body: { rules } });
  notice('sync rules saved');
  await loadSyncRules();
}

// ---------------------------------------------------------------------------------------- the fake Vinted

interface VintedAccount {
  vinted_user_id: string;
  latency_ms: number;
  items: { id: number; title: string; price: string; url: string; is_closed: boolean; photos: number }[];
  sales: number;
  faults: string[];
}

function vintedPath(): string {
  if (user === null) throw new PageError('signed_out', 'sign in first');
  return `/dev/vinted/${encodeURIComponent(user)}`;
}

async function loadVinted(): Promise<void> {
  const account = await devstack<VintedAccount>('GET', vintedPath());
  byTestId<HTMLInputElement>('vinted-latency').value = String(account.latency_ms);
  replaceChildren(byTestId('vinted-account'), [
    h(
      'p',
      { class: 'muted' },
      `Account ${account.vinted_user_id}: ${account.items.length} listing(s), ${account.sales} sale(s), each call takes ${account.latency_ms} ms`,
      account.faults.length ? `; the next calls fail with ${account.faults.join(', ')}` : '',
    ),
    h(
      'ul',
      {},
      ...account.items.map((item) =>
        h(
          'li',
          { 'data-testid': 'vinted-item', 'data-item-id': item.id },
          h('a', { href: item.url, target: '_blank', rel: 'noreferrer' }, `${item.id}`),
          ` ${item.title} · ${item.price} · ${item.photos} photo(s)${item.is_closed ? ' · closed' : ''}`,
        ),
      ),
    ),
  ]);
}

// ---------------------------------------------------------------------------------------- wiring

function fillMarketplaceSelect(
  select: HTMLSelectElement,
  actions: HTMLSelectElement,
  table: Record<Marketplace, string[]>,
): void {
  replaceChildren(
    select,
    MARKETPLACES.map((m) => option(m, NAMES[m])),
  );
  const fill = () =>
    replaceChildren(
      actions,
      table[select.value as Marketplace].map((a) => option(a)),
    );
  select.addEventListener('change', fill);
  fill();
}

function wire(): void {
  byTestId<HTMLFormElement>('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const userId = byTestId<HTMLInputElement>('signin-user').value.trim();
    void attempt('signing in', () => signIn(userId)).then(() => {
      if (user === null) signOut(false);
    });
  });
  byTestId('signout').addEventListener('click', () => signOut());
  byTestId<HTMLInputElement>('extension-switch').addEventListener('change', (event) =>
    setExtension((event.target as HTMLInputElement).checked),
  );
  byTestId<HTMLFormElement>('product-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt(editing ? 'saving the product' : 'creating the product', saveProduct);
  });
  byTestId('product-form-reset').addEventListener('click', resetProductForm);
  byTestId('products-refresh').addEventListener('click', () => void attempt('loading the products', loadProducts));

  const batchMarketplace = byTestId<HTMLSelectElement>('batch-marketplace');
  fillMarketplaceSelect(batchMarketplace, byTestId<HTMLSelectElement>('batch-action'), PRODUCT_ACTIONS);
  byTestId('batch-run').addEventListener('click', () => {
    const action = byTestId<HTMLSelectElement>('batch-action').value;
    void attempt(`${action} on the selected products`, () =>
      startBatch({ marketplace: batchMarketplace.value, action, product_ids: [...selected] } as BatchRequest),
    );
  });

  const jobForm = byTestId<HTMLFormElement>('job-form');
  fillMarketplaceSelect(
    byTestId<HTMLSelectElement>('job-form-marketplace'),
    byTestId<HTMLSelectElement>('job-form-action'),
    ACTIONS,
  );
  jobForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt('starting the job', () => startJob(jobFormRequest(jobForm)));
  });

  byTestId<HTMLFormElement>('sync-rules-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt('saving the sync rules', saveSyncRules);
  });

  byTestId('vinted-fault-add').addEventListener('click', () => {
    const fault = byTestId<HTMLSelectElement>('vinted-fault').value;
    void attempt('injecting a failure', async () => {
      await devstack('POST', `${vintedPath()}/faults`, { faults: [fault] });
      await loadVinted();
    });
  });
  byTestId('vinted-latency-save').addEventListener('click', () => {
    const latency = Number(byTestId<HTMLInputElement>('vinted-latency').value);
    void attempt('setting the latency', async () => {
      await devstack('PUT', `${vintedPath()}/latency`, { latency_ms: latency });
      await loadVinted();
    });
  });
  byTestId('vinted-refresh').addEventListener('click', () => void attempt('loading the fake Vinted', loadVinted));
}

async function boot(): Promise<void> {
  wire();
  config = (await attempt("reading the devstack's settings", () => devstack<DevConfig>('GET', '/dev/config'))) ?? null;
  renderDemoImages();
  replaceChildren(
    byTestId('vinted-fault'),
    (config?.fault_kinds ?? []).map((kind) => option(kind)),
  );
  resetProductForm();
  const saved = localStorage.getItem(USER_KEY);
  if (saved !== null) {
    byTestId<HTMLInputElement>('signin-user').value = saved;
    await attempt('signing in', () => signIn(saved));
    if (user === null) signOut(false);
    else await attempt('connecting the marketplace', completeConnecting);
  }
  byTestId('booting').hidden = true;
  document.body.dataset.ready = 'true';
}

void boot();
