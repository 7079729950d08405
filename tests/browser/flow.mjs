// The browser test of mxgate's web UI, as a user would go through it on a
// fresh box (started by ./run, which passes its addresses in the
// environment): first-boot setup with the one-time code (a wrong code
// first) and the guided first policy (an smtp-mode listener relaying
// example.test to the sink), log out, a failed login, log in, a bad
// address refused on the Backends page, add a backend and watch it turn
// healthy, drain it, send a message through the smtp-mode listener and
// find it on the Tracking page; every page of the navigation opens without
// errors, the keyboard reaches "Skip to content" and the navigation, and
// every page fits a phone's width. Exit code 0 when every step passed.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { openBrowser, Shots, VIEWPORT } from './browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run ./run, not this file)`);
  return value;
};
const BASE = env('MXGATE_URL');
const SETUP_CODE = env('MXGATE_SETUP_CODE');
const SINK = env('MXGATE_SINK_ADDR');
const SMTP = env('MXGATE_SMTP_ADDR');
const ADMIN = 'admin';
const PASSWORD = 'browser-test-password';
const NEW_SERVER = 'sink2';
const RECIPIENT = `browser-${process.pid}@example.test`;
/** A common phone's screen in CSS pixels. */
const PHONE = { width: 390, height: 844 };

const url = (path) => new URL(path, BASE).toString();
const shots = new Shots(env('MXGATE_ARTIFACTS'), process.env.MXGATE_README_SHOTS);

/** Runs one named step, printing how long it took. */
async function step(name, fn) {
  const start = Date.now();
  process.stdout.write(`browser: ${name} ... `);
  await fn();
  console.log(`ok (${((Date.now() - start) / 1000).toFixed(1)}s)`);
}

/** Reloads `page` until `check()` is true, for at most `timeoutMs`. */
async function pollPage(page, what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${page.url()}`);
    await page.waitForTimeout(500);
    await page.reload();
  }
}

/** The text of the cell under column `header` in the table row of `name`. */
async function cell(page, name, header) {
  const table = page.locator('table', { has: page.getByRole('cell', { name, exact: true }) });
  const headers = (await table.locator('thead th').allInnerTexts()).map((h) => h.trim());
  const index = headers.findIndex((h) => h.toLowerCase() === header.toLowerCase());
  assert.ok(index >= 0, `no column "${header}" in ${JSON.stringify(headers)}`);
  const row = table.locator('tbody tr', { has: page.getByRole('cell', { name, exact: true }) });
  return (await row.locator('td').nth(index).innerText()).trim();
}

/** Submits the login form. */
async function logIn(page, name, password) {
  await page.goto(url('/login'));
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForLoadState();
}

async function setup(page) {
  await step('an unconfigured box sends the user to the setup page', async () => {
    await page.goto(url('/'));
    await page.waitForURL(/\/setup$/);
    assert.match(await page.locator('main').innerText(), /setup code/i);
    await shots.take(page, 'setup', { readme: true });
  });
  const fill = async (code) => {
    await page.getByLabel(/^setup code/i).fill(code);
    await page.getByLabel(/^administrator name/i).fill(ADMIN);
    await page.getByLabel(/^password(?! again)/i).fill(PASSWORD);
    await page.getByLabel(/^password again/i).fill(PASSWORD);
    await page.getByRole('button', { name: /create the administrator/i }).click();
    await page.waitForLoadState();
  };
  await step('a wrong setup code is refused next to its field', async () => {
    await fill(SETUP_CODE === 'AAAA-AAAA' ? 'BBBB-BBBB' : 'AAAA-AAAA');
    const code = page.getByLabel(/^setup code/i);
    assert.equal(await code.getAttribute('aria-invalid'), 'true');
    const errorId = await code.getAttribute('aria-describedby');
    assert.ok(errorId, 'the code field names no error text');
    assert.match(await page.locator(`#${errorId}`).innerText(), /code/i);
    await shots.take(page, 'setup-wrong-code');
  });
  await step('the right code creates the admin and logs in', async () => {
    await fill(SETUP_CODE);
    await page.waitForURL(url('/setup/policy'));
    assert.match(await page.locator('header').innerText(), new RegExp(`${ADMIN} \\(admin\\)`));
    await shots.take(page, 'setup-policy', { readme: true });
  });
  await step(`the guided setup makes the first policy (smtp on ${SMTP}, backend ${SINK})`, async () => {
    await page.getByLabel('Mode', { exact: true }).selectOption('smtp');
    await page.getByLabel('Server 1 name', { exact: true }).fill('mta1');
    await page.getByLabel('Server 1 address (IP:port)', { exact: true }).fill(SINK);
    await page.getByLabel(/^Relay domains/).fill('example.test');
    await page.getByLabel(/^Accept mail on/).fill(SMTP);
    await page.getByRole('button', { name: 'Create the policy' }).click();
    await page.waitForURL(url('/'));
    await shots.take(page, 'dashboard-first');
  });
  await step('the setup page is gone once an admin exists', async () => {
    await page.goto(url('/setup'));
    assert.doesNotMatch(page.url(), /\/setup$/);
    await page.goto(url('/'));
  });
}

async function accounts(page) {
  await step('log out', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login$/);
    await page.goto(url('/backends'));
    await page.waitForURL(/\/login$/);
  });
  await step('a wrong password is refused with a message', async () => {
    await logIn(page, ADMIN, 'not-the-password');
    assert.match(page.url(), /\/login$/);
    assert.match(await page.getByRole('alert').innerText(), /\S/);
    await shots.take(page, 'login-failed');
  });
  await step('log in', async () => {
    await logIn(page, ADMIN, PASSWORD);
    await page.waitForURL(url('/'));
    await shots.take(page, 'dashboard');
  });
}

/** Fills and submits the Backends page's "Add a server" form of pool mta. */
async function addServer(page, name, address) {
  await page.goto(url('/backends'));
  const pool = page.locator('section', { has: page.getByRole('heading', { name: /^Pool mta/ }) });
  const add = pool.locator('details', { hasText: 'Add a server' });
  await add.locator('summary').click();
  await add.getByLabel('Name').fill(name);
  await add.getByLabel(/^Address/).fill(address);
  await add.getByRole('button', { name: 'Add server' }).click();
  await page.waitForLoadState();
  return add;
}

async function backends(page) {
  await step('a bad address is refused next to its field and adds nothing', async () => {
    const add = await addServer(page, 'bad1', 'not-an-address');
    const address = add.getByLabel(/^Address/);
    assert.equal(await address.getAttribute('aria-invalid'), 'true');
    assert.equal(await address.inputValue(), 'not-an-address', 'what was typed is kept');
    const errorId = await address.getAttribute('aria-describedby');
    assert.match(await page.locator(`#${errorId}`).innerText(), /\S/);
    await shots.take(page, 'backends-refused');
    await page.goto(url('/backends'));
    assert.equal(await page.getByRole('cell', { name: 'bad1', exact: true }).count(), 0);
  });
  await step(`add backend ${NEW_SERVER} (${SINK}) on the Backends page`, async () => {
    await addServer(page, NEW_SERVER, SINK);
    await page.waitForURL(url('/backends'));
    assert.equal(await cell(page, NEW_SERVER, 'Address'), SINK);
  });
  await step(`${NEW_SERVER} and mta1 turn healthy`, async () => {
    await pollPage(page, `${NEW_SERVER} and mta1 healthy`, 45_000, async () =>
      /^(up|healthy)$/i.test(await cell(page, NEW_SERVER, 'Health'))
      && /^(up|healthy)$/i.test(await cell(page, 'mta1', 'Health')),
    );
    await shots.take(page, 'backends-healthy');
  });
  await step(`drain ${NEW_SERVER}`, async () => {
    await page.getByRole('button', { name: `drain ${NEW_SERVER}` }).click();
    await page.waitForURL(url('/backends'));
    assert.match(await cell(page, NEW_SERVER, 'State'), /drain/i);
    assert.match(await cell(page, 'mta1', 'State'), /ready/i);
    await shots.take(page, 'backends', { readme: true });
  });
}

/** Sends one message to RECIPIENT through the smtp-mode listener (swaks
 *  exits non-zero when a step is refused) and checks the 250 after the
 *  final dot. */
function sendMessage() {
  const out = execFileSync(
    'swaks',
    ['--server', SMTP, '--from', 'alice@sender.test', '--to', RECIPIENT,
      '--header', 'Subject: browser test', '--timeout', '20'],
    { encoding: 'utf8' },
  );
  assert.match(out, /-> \.\r?\n<-\s+250 /, out);
}

async function tracking(page) {
  await step(`send a message to ${RECIPIENT} through the listener`, async () => sendMessage());
  await step('find it on the Tracking page', async () => {
    await page.goto(url('/tracking'));
    await page.getByLabel(/recipient/i).first().fill(RECIPIENT);
    await page.getByLabel(/recipient/i).first().press('Enter');
    await page.waitForURL(/\/tracking\?.*recipient=/);
    const row = page.locator('tbody tr', { hasText: RECIPIENT });
    await pollPage(page, `a message to ${RECIPIENT}`, 15_000, async () => (await row.count()) === 1);
    assert.match(await row.innerText(), /accepted/i);
    await shots.take(page, 'tracking', { readme: true });
  });
  await step("open the message's session: its sender and recipient", async () => {
    await page.locator('tbody tr', { hasText: RECIPIENT }).getByRole('link').first().click();
    await page.waitForURL(/\/tracking\/\d+$/);
    const text = await page.locator('main').innerText();
    assert.ok(text.includes(RECIPIENT), text);
    assert.ok(text.includes('alice@sender.test'), text);
    await shots.take(page, 'tracking-session');
  });
}

/** A page label as a file name part. */
const slug = (label) => label.toLowerCase().replace(/[^a-z0-9]+/g, '-');

async function everyPage(page) {
  const pages = [];
  await step('every page of the navigation opens', async () => {
    await page.goto(url('/'));
    const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').all();
    for (const link of links) {
      pages.push({ label: (await link.innerText()).trim(), href: await link.getAttribute('href') });
    }
    assert.ok(pages.length >= 2, 'the navigation has no links');
    for (const { label, href } of pages) {
      const response = await page.goto(url(href));
      assert.equal(response.status(), 200, `${label} (${href})`);
      assert.match(await page.locator('h1').innerText(), /\S/, `${label} has no title`);
      await shots.take(page, `page-${slug(label)}`);
    }
    await page.goto(url('/'));
    await shots.take(page, 'dashboard', { readme: true });
  });
  await step('the keyboard reaches "Skip to content" first, then the navigation', async () => {
    await page.goto(url('/backends'));
    const focused = async () =>
      page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.match(page.url(), /#main$/);
    await page.goto(url('/backends'));
    const tabs = [];
    for (let i = 0; i < 8 && !tabs.includes('Dashboard'); i += 1) {
      await page.keyboard.press('Tab');
      tabs.push(await focused());
    }
    assert.ok(tabs.includes('Dashboard'), `Tab never reached the navigation: ${JSON.stringify(tabs)}`);
  });
  await step('every page fits a phone screen (no sideways scrolling)', async () => {
    await page.setViewportSize(PHONE);
    const wide = [];
    for (const { label, href } of pages) {
      await page.goto(url(href));
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > PHONE.width) wide.push(`${label} (${href}): ${width} px`);
      await shots.take(page, `phone-${slug(label)}`);
    }
    await page.setViewportSize(VIEWPORT);
    assert.deepEqual(wide, [], `wider than a ${PHONE.width} px phone`);
  });
}

const browser = await openBrowser({
  certPath: env('MXGATE_CERT'),
  profileDir: process.env.MXGATE_CHROMIUM_PROFILE,
});
let failed = false;
try {
  await setup(browser.page);
  await accounts(browser.page);
  await backends(browser.page);
  await tracking(browser.page);
  await everyPage(browser.page);
  assert.deepEqual(browser.problems, [], 'problems seen in the browser');
  console.log('browser: every step passed');
} catch (e) {
  failed = true;
  console.log('FAILED');
  console.error(e.stack ?? e);
  if (browser.problems.length) console.error(`seen in the browser:\n  ${browser.problems.join('\n  ')}`);
  await shots.take(browser.page, 'failure').catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
