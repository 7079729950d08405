// The browser side of the browser tests: launches Debian's headless
// chromium through playwright-core with a fresh profile, trusting only the
// box's own self-signed certificate (by its public key), and watches every
// page for what a user would notice as broken: server errors (5xx),
// JavaScript errors and CSP violations in the console. Screenshots go to
// the artefacts directory, and the README's copies to docs/screenshots
// when asked for.

import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** The size of every screenshot (and of the README's). */
export const VIEWPORT = { width: 1280, height: 800 };

/** base64(SHA-256(SubjectPublicKeyInfo)) of the PEM certificate at `path`:
 *  what chromium's --ignore-certificate-errors-spki-list accepts. */
function spkiHash(path) {
  const cert = new X509Certificate(readFileSync(path));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** A browser session: `context`, `page`, `problems` seen so far, `close()`.
 *  The fresh profile goes to `profileDir` (which the caller removes) or to
 *  a temporary directory removed by `close()`. */
export async function openBrowser({ certPath, profileDir }) {
  const profile = profileDir ?? mkdtempSync(join(tmpdir(), 'mxgate-chromium.'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: VIEWPORT,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spkiHash(certPath)}`,
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`JavaScript error on ${page.url()}: ${e.message}`));
  page.on('console', (msg) => {
    // Failed loads are judged by their answers below: a form refused with
    // 4xx is expected, a missing stylesheet or script is not.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      problems.push(`console error on ${page.url()}: ${msg.text()}`);
    }
  });
  page.on('response', (r) => {
    const request = r.request();
    const asset = request.resourceType() !== 'document' && !r.url().endsWith('/favicon.ico');
    if (r.status() >= 500 || (asset && r.status() >= 400)) {
      problems.push(`${r.status()} from ${request.method()} ${r.url()}`);
    }
  });
  return {
    context,
    page,
    problems,
    async close() {
      await context.close();
      if (!profileDir) rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves screenshots: every one to `artifacts` (whole page, numbered in
 *  visiting order), and `readme` ones to `docsDir` (the viewport only)
 *  when that is set. */
export class Shots {
  constructor(artifacts, docsDir) {
    this.artifacts = artifacts;
    this.docsDir = docsDir;
    this.count = 0;
    mkdirSync(artifacts, { recursive: true });
    if (docsDir) mkdirSync(docsDir, { recursive: true });
  }

  async take(page, name, { readme = false } = {}) {
    this.count += 1;
    const file = `${String(this.count).padStart(2, '0')}-${name}.png`;
    await page.screenshot({ path: join(this.artifacts, file), fullPage: true });
    if (readme && this.docsDir) {
      await page.screenshot({ path: join(this.docsDir, `${name}.png`) });
    }
  }
}
