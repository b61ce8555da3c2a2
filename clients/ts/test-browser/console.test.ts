// The console in a real browser: Debian's chromium, driven by playwright-core (never a downloaded browser),
// against a devstack this test starts. A user signs in, creates a product with 3 photos, publishes it on Vinted
// with "act as the browser extension" on and watches the progress bar reach 100 % and the listing link appear;
// reloads the page in the middle of a job and finds it still there and still moving; sees the API's own
// message for bad input; connects the fake eBay and publishes there. Screenshots: clients/ts/test-results/.
import assert from 'node:assert/strict';
import { accessSync, constants, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { REPO, startDevstack, type Devstack } from './devstack.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RESULTS = join(REPO, 'clients', 'ts', 'test-results');
const USER = `browser-${Date.now().toString(36)}`;
const WAIT_MS = 30_000;
// What this machine can run headless, and nothing that reaches out (FACTS: Chromium on Debian as root).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function chromiumMissing(): string | undefined {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return undefined;
  } catch {
    return (
      `chromium is not installed at ${CHROMIUM} (make browser-test installs Debian's chromium package when it ` +
      'can: as root or with password-less sudo, and apt-get; or set CHROMIUM to a Chromium binary)'
    );
  }
}

const skip = chromiumMissing();
if (skip) console.error(`browser test skipped: ${skip}`);

describe('the console in Chromium', { skip, timeout: 300_000 }, () => {
  let stack: Devstack;
  let browser: Browser;
  let page: Page;
  let token = '';
  let shots = 0;

  /** The API's own answer to a request, as this user: what the page must show when it is refused. */
  async function apiRefusal(method: string, path: string, body?: unknown) {
    const response = await fetch(stack.httpUrl + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(!response.ok, `${method} ${path} was expected to be refused`);
    const { code, message } = (await response.json()) as { code: string; message: string };
    return { status: response.status, code, message };
  }

  async function screenshot(name: string): Promise<void> {
    shots += 1;
    await page.screenshot({ path: join(RESULTS, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
  }

  async function ready(): Promise<void> {
    await page.locator('body[data-ready=true]').waitFor({ state: 'attached' });
    await page.getByTestId('connection-state').and(page.locator('[data-state="open"]')).waitFor();
  }

  function productRow(title: string): Locator {
    return page
      .getByTestId('product-row')
      .filter({ has: page.getByTestId('product-row-title').getByText(title, { exact: true }) });
  }

  async function createProduct(title: string, photos: number[]): Promise<string> {
    await page.getByTestId('product-title').fill(title);
    for (const n of photos) await page.getByTestId(`demo-image-${n}`).check();
    await page.getByTestId('product-save').click();
    const row = productRow(title);
    await row.waitFor();
    const id = await row.getAttribute('data-product-id');
    assert.ok(id, 'the product row names its product');
    return id;
  }

  async function runOn(title: string, marketplace: string, action: string): Promise<Locator> {
    const row = productRow(title);
    await row.getByTestId('product-job-marketplace').selectOption(marketplace);
    await row.getByTestId('product-job-action').selectOption(action);
    await row.getByTestId('product-job-run').click();
    const productId = await row.getAttribute('data-product-id');
    const job = page.locator(
      `[data-testid=job-row][data-product-id="${productId}"][data-marketplace="${marketplace}"][data-action="${action}"]`,
    );
    await job.first().waitFor();
    return job.first();
  }

  async function percent(job: Locator): Promise<number> {
    return Number(await job.getByTestId('job-progress').getAttribute('data-percent'));
  }

  /** The error the page shows last: status, code and message. */
  async function shownError(): Promise<{ status: number; code: string; message: string }> {
    const error = page.getByTestId('error').first();
    await error.waitFor();
    return {
      status: Number(await error.getByTestId('error-status').textContent()),
      code: (await error.getByTestId('error-code').textContent()) ?? '',
      message: (await error.getByTestId('error-message').textContent()) ?? '',
    };
  }

  async function dismissErrors(): Promise<void> {
    for (const button of await page.getByTestId('error-dismiss').all()) await button.click();
  }

  before(async () => {
    rmSync(RESULTS, { recursive: true, force: true });
    mkdirSync(RESULTS, { recursive: true });
    stack = await startDevstack();
    const minted = await fetch(`${stack.httpUrl}/dev/token`, {
      method: 'POST',
      body: JSON.stringify({ user_id: USER }),
    });
    token = ((await minted.json()) as { token: string }).token;
    const served = await fetch(`${stack.httpUrl}/console/`);
    assert.equal(served.status, 200, `the devstack does not serve the console: ${await served.text()}`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a dev user signs in and the WebSocket opens', async () => {
    await page.goto(`${stack.httpUrl}/console/`);
    await page.locator('body[data-ready=true]').waitFor({ state: 'attached' });
    await page.getByTestId('signin-user').fill(USER);
    await page.getByTestId('signin-submit').click();
    await ready();
    assert.equal(await page.getByTestId('signed-in-user').textContent(), USER);
  });

  test('a product with 3 photos is published on Vinted by the page acting as the extension', async () => {
    await page.getByTestId('vinted-latency').fill('400'); // each Vinted call takes that long: the bar moves in steps
    await page.getByTestId('vinted-latency-save').click();
    await page.getByTestId('extension-switch').check();
    await page.getByTestId('extension-state').and(page.locator('[data-state="extension ready"]')).waitFor();
    await createProduct("Levi's 501 jeans", [1, 2, 3]);
    const row = productRow("Levi's 501 jeans");
    assert.equal(await row.getByTestId('product-row-photos').getAttribute('data-count'), '3');

    const job = await runOn("Levi's 501 jeans", 'vinted', 'publish');
    const seen = new Set<number>();
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const now = await percent(job);
      if (now > 0 && now < 100 && ![...seen].some((value) => value > 0 && value < 100)) {
        await screenshot('vinted-publish-in-progress');
      }
      seen.add(now);
      if (now === 100) break;
      await page.waitForTimeout(100);
    }
    assert.ok(seen.has(100), `the progress bar never reached 100 % (seen: ${[...seen].join(', ')})`);
    assert.ok(
      [...seen].some((value) => value > 0 && value < 100),
      `no step in between: ${[...seen].join(', ')}`,
    );
    assert.equal(await job.getAttribute('data-status'), 'completed');
    const link = job.getByTestId('job-result-link');
    assert.match((await link.getAttribute('href')) ?? '', /^https:\/\/www\.vinted\.fr\/items\/\d+$/);
    const listing = row.locator('[data-testid=listing-link][data-marketplace="vinted"]');
    await listing.waitFor();
    assert.equal(await listing.getAttribute('href'), await link.getAttribute('href'));
    await screenshot('vinted-published');
  });

  test('a reloaded page finds its running job, which goes on', async () => {
    await page.getByTestId('vinted-latency').fill('1500');
    await page.getByTestId('vinted-latency-save').click();
    await createProduct('Wool winter coat', [4, 5, 6]);
    const job = await runOn('Wool winter coat', 'vinted', 'publish');
    const jobId = await job.getAttribute('data-job-id');
    await page.waitForFunction((id) => {
      const bar = document.querySelector(`[data-job-id="${id}"] [data-testid=job-progress]`);
      return Number(bar?.getAttribute('data-percent')) >= 25;
    }, jobId);
    const before = await percent(job);
    assert.ok(before < 100, 'the job ended before the reload');
    await screenshot('before-reload');

    await page.reload();
    await ready();
    const again = page.locator(`[data-testid=job-row][data-job-id="${jobId}"]`);
    await again.waitFor();
    assert.ok(await page.getByTestId('extension-switch').isChecked(), 'the extension switch stays on after a reload');
    assert.ok((await percent(again)) >= before, 'the job came back with less progress than it had');
    await screenshot('after-reload');
    await page.waitForFunction(
      ([id, was]) => {
        const bar = document.querySelector(`[data-job-id="${id}"] [data-testid=job-progress]`);
        return Number(bar?.getAttribute('data-percent')) > Number(was);
      },
      [jobId, before] as const,
    );
    await again.and(page.locator('[data-status=completed]')).waitFor({ timeout: 60_000 });
    assert.equal(await percent(again), 100);
    await productRow('Wool winter coat').locator('[data-testid=listing-link][data-marketplace="vinted"]').waitFor();
    await page.getByTestId('vinted-latency').fill('300');
    await page.getByTestId('vinted-latency-save').click();
  });

  test('a batch updates both listings, its counts going up live', async () => {
    for (const title of ["Levi's 501 jeans", 'Wool winter coat']) {
      await productRow(title).getByTestId('product-select').check();
    }
    await page.getByTestId('batch-marketplace').selectOption('vinted');
    await page.getByTestId('batch-action').selectOption('update');
    await page.getByTestId('batch-run').click();
    const batch = page.getByTestId('batch-row').first();
    await batch.filter({ hasText: '2/2 ended' }).waitFor();
    assert.match((await batch.textContent()) ?? '', /completed 2/);
    for (const title of ["Levi's 501 jeans", 'Wool winter coat']) {
      await productRow(title).getByTestId('product-select').uncheck();
    }
  });

  test('without the extension a job says what it waits for, and is cancelled', async () => {
    await page.getByTestId('extension-switch').uncheck();
    await page.getByTestId('extension-state').and(page.locator('[data-state="extension off"]')).waitFor();
    const job = await runOn("Levi's 501 jeans", 'vinted', 'update');
    const wait = job.getByTestId('job-wait');
    await wait.waitFor();
    assert.match((await wait.getAttribute('data-reason')) ?? '', /^(no_plugin|plugin_not_ready)$/);
    await screenshot('waiting-for-the-extension');
    await job.getByTestId('job-cancel').click();
    await job.and(page.locator('[data-status=cancelled]')).waitFor();
    await page.getByTestId('extension-switch').check();
  });

  test("bad input shows the API's own code and message", async () => {
    await dismissErrors();
    const form = page.getByTestId('job-form');
    const unknown = '00000000-0000-4000-8000-000000000000';
    await form.getByTestId('job-form-marketplace').selectOption('vinted');
    await form.getByTestId('job-form-action').selectOption('publish');
    await form.getByTestId('job-form-product').fill(unknown);
    await form.getByTestId('job-form-submit').click();
    const expected = await apiRefusal('POST', '/jobs', {
      marketplace: 'vinted',
      action: 'publish',
      product_id: unknown,
    });
    assert.deepEqual(await shownError(), expected);
    await dismissErrors();

    await form.getByTestId('job-form-product').fill('');
    await form.getByTestId('job-form-action').selectOption('message');
    await form.getByTestId('job-form-params').fill('{"conversation_id": "not digits"}');
    await form.getByTestId('job-form-submit').click();
    const invalid = { marketplace: 'vinted', action: 'message', params: { conversation_id: 'not digits' } };
    assert.deepEqual(await shownError(), await apiRefusal('POST', '/jobs', invalid));
    await screenshot('invalid-params');
    await dismissErrors();

    // eBay is not connected yet.
    const row = productRow("Levi's 501 jeans");
    await row.getByTestId('product-job-marketplace').selectOption('ebay');
    await row.getByTestId('product-job-action').selectOption('publish');
    await row.getByTestId('product-job-run').click();
    const productId = await row.getAttribute('data-product-id');
    const notConnected = await apiRefusal('POST', '/jobs', {
      marketplace: 'ebay',
      action: 'publish',
      product_id: productId,
    });
    assert.deepEqual(await shownError(), notConnected);
    await screenshot('ebay-not-connected');
    await dismissErrors();
  });

  test('the fake eBay is connected through its OAuth pages, and the product is published there', async () => {
    await page.getByTestId('connect-ebay').click(); // to the fake eBay, which consents, and back to the console
    await ready();
    await page.getByTestId('notice').filter({ hasText: 'eBay connected' }).waitFor();
    await page.getByTestId('settings-defaults-ebay').click();
    await page.getByTestId('settings-complete-ebay').waitFor();
    const job = await runOn("Levi's 501 jeans", 'ebay', 'publish');
    await job.and(page.locator('[data-status=completed]')).waitFor();
    assert.equal(await percent(job), 100);
    const listing = productRow("Levi's 501 jeans").locator('[data-testid=listing-link][data-marketplace="ebay"]');
    await listing.waitFor();
    assert.match((await listing.getAttribute('href')) ?? '', /\/itm\/\d+$/);
    await screenshot('ebay-published');
  });
});
