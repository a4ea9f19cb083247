// Headless Debian Chromium driven by playwright-core, for the web client's tests: the web client
// built into a directory of its own, a person per browser context, and what each page did that it
// must not (a request to another origin, an uncaught error, a dialog).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
export const chromiumNote = haveChromium
  ? ''
  : ` (SKIPPED: no ${CHROMIUM}; apt-get install chromium)`;
if (!haveChromium)
  console.warn(`[parley] ${CHROMIUM} not found: the web client's browser tests are SKIPPED`);

/** `npm run build` into a temporary directory (dist/ may be rebuilt by another suite meanwhile). */
export function buildWebClient(): { webDir: string; output: string; ms: number; remove(): void } {
  const out = mkdtempSync(path.join(tmpdir(), 'parley-web-'));
  const started = performance.now();
  const output = execFileSync(process.execPath, ['scripts/build.mjs', out], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    encoding: 'utf8',
  });
  return {
    webDir: path.join(out, 'web'),
    output: output.trim(),
    ms: performance.now() - started,
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
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
  });
}

export interface Person {
  context: BrowserContext;
  page: Page;
  /** Requests to any origin but the server's (each was blocked). */
  outside: string[];
  /** Uncaught page errors and dialogs opened by page script. */
  errors: string[];
}

export async function openPerson(
  browser: Browser,
  origin: string,
  viewport = { width: 1100, height: 800 },
): Promise<Person> {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(10_000);
  const outside: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url === origin) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('dialog', (dialog) => {
    // confirm() is the client's own (leave, delete): accepted. Anything else is a script's.
    if (dialog.type() === 'confirm') return void dialog.accept();
    errors.push(`dialog: ${dialog.type()} ${dialog.message()}`);
    void dialog.dismiss();
  });
  return { context, page, outside, errors };
}

/**
 * Every button and text field in the accessibility tree that has no accessible name (read from
 * Chromium's own tree over CDP, as assistive technology sees it).
 */
export async function unnamedControls(page: Page): Promise<{ checked: number; unnamed: string[] }> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as {
      nodes: Array<{ ignored: boolean; role?: { value: string }; name?: { value: string } }>;
    };
    const controls = new Set(['button', 'textbox', 'searchbox', 'combobox', 'checkbox', 'radio']);
    const shown = nodes.filter((n) => !n.ignored && controls.has(n.role?.value ?? ''));
    return {
      checked: shown.length,
      unnamed: shown.filter((n) => !n.name?.value?.trim()).map((n) => n.role?.value ?? '?'),
    };
  } finally {
    await cdp.detach();
  }
}

/** Whitespace collapsed: rendered Markdown and stored text compare equal when they say the same. */
export const squash = (text: string | null | undefined) => (text ?? '').replace(/\s+/g, ' ').trim();
