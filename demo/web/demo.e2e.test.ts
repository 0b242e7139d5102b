/**
 * The demo in a real browser (Debian's chromium through playwright-core; nothing is downloaded):
 * create a customer, see it on the query side (MySQL), edit it, delete it; bad input shows field
 * messages; data is shown as text, never as markup. Screenshots go to test-results/demo/.
 */
import { afterAll, beforeAll, expect } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, missingPrerequisite } from '../../test/support/prerequisites.js';
import { itRequiring } from '../../test/support/requires.js';
import { testServers, waitFor } from '../../test/support/servers.js';
import { startTestPipeline, type TestPipeline } from './testing.js';

// Without chromium every test here is skipped and named in the run's `not run:` line.
const it = itRequiring('chromium');
const SHOTS = path.resolve('test-results', 'demo');

let pipeline: TestPipeline | undefined;
let context: BrowserContext | undefined;
let page: Page;
let userDataDir: string | undefined;

beforeAll(async () => {
  if (missingPrerequisite('chromium')) return;
  mkdirSync(SHOTS, { recursive: true });
  pipeline = await startTestPipeline('demo_e2e');
  userDataDir = mkdtempSync(path.join(tmpdir(), 'cqrs-sync-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1440, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await pipeline?.stop();
}, 60_000);

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start (see beforeAll's error)`);
  return value;
}

const shot = (file: string) => page.screenshot({ path: path.join(SHOTS, file), fullPage: true });
const customerRow = (text: string) => page.locator('#customers tbody tr', { hasText: text });

it('creates, edits and deletes a customer, and the query side follows live', async () => {
  const d = required(pipeline, 'the demo').demo;
  const rm = required(pipeline, 'the test database').db;
  await page.goto(`${d.web.url}/`);
  await page.locator('#live.on').waitFor({ timeout: 15_000 });
  // No banner; the panel names the MongoDB that answers, and a stand-in never passes for a real one.
  const mongo = page
    .locator('#pipeline dt', { hasText: 'MongoDB' })
    .locator('xpath=following-sibling::dd[1]');
  await mongo.waitFor({ timeout: 15_000 });
  await expect(mongo.textContent()).resolves.toBe(
    testServers().mongoKind === 'stand-in' ? 'mongo-java-server stand-in' : 'a real MongoDB server',
  );
  await expect(page.locator('.banner, #unsafe-banner').count()).resolves.toBe(0);

  // A bad request: field-level messages, nothing written.
  await page.getByRole('button', { name: 'Register customer' }).click();
  await page.locator('#create-customer .field-error[data-for="email"]').waitFor();
  await expect(
    page.locator('#create-customer .field-error[data-for="name"]').textContent(),
  ).resolves.toBe('must not be empty');
  await shot('01-validation.png');

  // Create: accepted by MongoDB, shown once MySQL has it.
  const form = page.locator('#create-customer');
  await form.getByLabel('Name').fill('Ada Lovelace');
  await form.getByLabel('Email').fill('ada@example.org');
  await page.getByRole('button', { name: 'Register customer' }).click();
  await customerRow('Ada Lovelace').waitFor({ timeout: 30_000 });
  const rows = await rm.query<{ id: string; name: string; version: number }>(
    'SELECT id, name, version FROM customers',
  );
  expect(rows.map((r) => r.name)).toEqual(['Ada Lovelace']);
  await page.locator('.journey .lag').first().waitFor({ timeout: 30_000 });
  await shot('02-created.png');

  // Edit: a new name and email, applied in MySQL as version 3.
  await customerRow('Ada Lovelace').getByRole('button', { name: 'Edit' }).click();
  const editing = page.locator('#customers tr.editing');
  await editing.getByLabel('New name').fill('Ada King');
  await editing.getByLabel('New email').fill('ada.king@example.org');
  await editing.getByRole('button', { name: 'Save' }).click();
  await customerRow('ada.king@example.org').waitFor({ timeout: 30_000 });
  await expect(customerRow('Ada King').locator('td').nth(2).textContent()).resolves.toBe('3');
  await shot('03-edited.png');

  // Data is text, never markup (and the CSP would refuse inline handlers anyway).
  const evil = '<img src=x onerror="window.__pwned=1">';
  await form.getByLabel('Name').fill(evil);
  await form.getByLabel('Email').fill('evil@example.org');
  await page.getByRole('button', { name: 'Register customer' }).click();
  await customerRow('evil@example.org').waitFor({ timeout: 30_000 });
  await expect(customerRow('evil@example.org').locator('td').first().textContent()).resolves.toBe(
    evil,
  );
  await expect(page.locator('#customers img').count()).resolves.toBe(0);
  await expect(
    page.evaluate(() => (globalThis as { __pwned?: number }).__pwned),
  ).resolves.toBeUndefined();

  // Delete: gone from the query side.
  await customerRow('Ada King').getByRole('button', { name: 'Delete' }).click();
  await customerRow('Ada King').waitFor({ state: 'detached', timeout: 30_000 });
  await waitFor('the row to leave MySQL', async () => {
    const left = await rm.query('SELECT id FROM customers WHERE name = ?', ['Ada King']);
    return left.length === 0;
  });
  await page.locator('#pipeline dd').first().waitFor();
  await shot('04-deleted.png');
});

// Reported: the first paint could show "connecting…" and no figures; a 255-character name without
// spaces (which the API accepts) widened the page to 5,425 px, pushing the email, version and
// actions off-screen; the empty dead-letter table overflowed its card.
it('shows figures before the live stream answers, and a 255-character name fits the page', async () => {
  const d = required(pipeline, 'the demo').demo;
  // No live stream at all: everything shown comes from the page's first requests.
  await page.route('**/api/stream', (route) => route.abort());
  try {
    await page.goto(`${d.web.url}/`);
    await page.locator('#pipeline dd').first().waitFor({ timeout: 15_000 });
    await expect(page.locator('#pipeline dt').first().textContent()).resolves.toBe('Relay');
    await expect(page.locator('#customer-count').textContent()).resolves.toMatch(/^\(\d+\)$/);
    await shot('05-first-paint-without-stream.png');
  } finally {
    await page.unroute('**/api/stream');
  }

  await page.goto(`${d.web.url}/`);
  await page.locator('#live.on').waitFor({ timeout: 15_000 });
  const name = 'W'.repeat(255);
  const email = `${'e'.repeat(60)}@${'d'.repeat(60)}.example.org`;
  const form = page.locator('#create-customer');
  await form.getByLabel('Name').fill(name);
  await form.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Register customer' }).click();
  await customerRow(email).waitFor({ timeout: 30_000 });
  await page.locator('#pipeline dd').first().waitFor();

  const fits = async (): Promise<void> => {
    // A string: it runs in the page, and this project's types have no DOM. `overflowing` lists the
    // cards whose content is wider than the card.
    const layout = await page.evaluate<{
      scrollWidth: number;
      innerWidth: number;
      overflowing: string[];
    }>(`({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      overflowing: [...document.querySelectorAll('main > section')]
        .filter((s) => s.scrollWidth > s.clientWidth + 1)
        .map((s) => s.className),
    })`);
    expect(layout.overflowing).toEqual([]);
    expect(layout.scrollWidth).toBeLessThanOrEqual(layout.innerWidth);
    // The row's every cell, buttons included, is on screen.
    const viewport = page.viewportSize();
    for (const cell of await customerRow(email).locator('td').all()) {
      const box = await cell.boundingBox();
      expect(box).not.toBeNull();
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(viewport?.width ?? 0);
    }
  };
  await fits();
  // Shortened on the page, whole in the cell's text and its tooltip.
  const cell = customerRow(email).locator('td').first();
  await expect(cell.textContent()).resolves.toBe(name);
  await expect(cell.getAttribute('title')).resolves.toBe(name);
  await shot('06-long-name.png');

  // One column on a narrow window: still nothing wider than the page.
  await page.setViewportSize({ width: 720, height: 900 });
  try {
    await fits();
    await shot('07-long-name-narrow.png');
  } finally {
    await page.setViewportSize({ width: 1440, height: 900 });
  }
});

// Issue 15: the demo shows a tampered row found and healed.
it('tampers with a row, verify finds it, verify and repair heals it, verify is clean', async () => {
  const d = required(pipeline, 'the demo').demo;
  const rm = required(pipeline, 'the test database').db;
  await page.goto(`${d.web.url}/`);
  await page.locator('#live.on').waitFor({ timeout: 15_000 });
  const result = page.locator('#verify-result');
  await page.getByRole('button', { name: 'Tamper a row' }).click();
  await page.locator('#verify-result', { hasText: 'Demo only' }).waitFor({ timeout: 15_000 });
  const [tampered] = await rm.query<{ id: string }>('SELECT id FROM customers WHERE name = ?', [
    'tampered by hand',
  ]);
  expect(tampered).toBeDefined();

  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  const drift = page.locator(`#verify-drift li[data-class="content"][data-id="${tampered?.id}"]`);
  await drift.waitFor({ timeout: 60_000 });
  await expect(drift.textContent()).resolves.toContain('customers.name');
  await expect(page.locator('#verify-drift li[data-class]').count()).resolves.toBe(1);
  await shot('08-verify-found.png');

  await page.getByRole('button', { name: 'Verify and repair' }).click();
  await page.locator('#verify-result', { hasText: 'repair events published' }).waitFor({
    timeout: 60_000,
  });
  await waitFor('the sink to apply the repair', async () => {
    const left = await rm.query('SELECT id FROM customers WHERE name = ?', ['tampered by hand']);
    return left.length === 0;
  });
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await page.locator('#verify-result', { hasText: 'Clean' }).waitFor({ timeout: 60_000 });
  await expect(result.textContent()).resolves.toMatch(/^Clean: \d+ aggregates agree/);
  await shot('09-verify-clean.png');
});
