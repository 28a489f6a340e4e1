// Shared set-up of the browser tests: a taxdesk server of its own (temporary data dir,
// SQLite, open 24/7, a free port), Debian's Chromium through playwright-core, pages that
// fail the test on any console error, and screenshots under tests/web/screenshots/.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
export const SCREENSHOTS = join(here, 'screenshots');

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `taxdesk serve` (TAXDESK_BIN, else target/debug/taxdesk) with `extraEnv` on top of
 * the test defaults; resolves { base, dir, stop }.
 */
export async function startServer(extraEnv = {}) {
  const bin = process.env.TAXDESK_BIN
    || join(process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target'), 'debug', 'taxdesk');
  if (!existsSync(bin)) throw new Error(`${bin} not found: run \`cargo build --bin taxdesk\` first (or set TAXDESK_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'taxdesk-web-'));
  const port = await freePort();
  const env = { ...process.env };
  // The embedded default: no key configured, so /login exists. Default urge cool-down (24h).
  for (const k of Object.keys(env)) {
    // TAXDESK_WEB_DIR (serve web/ from disk) is kept: it lets one iterate without rebuilding.
    if ((k.startsWith('TAXDESK_') && k !== 'TAXDESK_WEB_DIR') || k === 'DATABASE_URL') delete env[k];
  }
  Object.assign(env, {
    TAXDESK_BIND: `127.0.0.1:${port}`,
    TAXDESK_DATA_DIR: dir,
    DATABASE_URL: `sqlite://${dir}/taxdesk.db`,
    TAXDESK_CALENDAR: 'always',
    // No model download per test server: lexical search only.
    TAXDESK_KB_MODEL_URL: 'off',
    // Rate limits are off in tests unless a test turns them on.
    TAXDESK_RATE_LIMIT: 'off',
    RUST_LOG: env.RUST_LOG || 'warn',
  }, extraEnv);
  const log = createWriteStream(join(dir, 'serve.log'));
  const child = spawn(bin, ['serve'], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`taxdesk serve exited with ${child.exitCode}; see ${dir}/serve.log`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`taxdesk serve did not become healthy; see ${dir}/serve.log`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    base,
    dir,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); setTimeout(r, 5000); });
      if (!process.env.KEEP_DATA) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launch() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const args = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath, headless: true, args });
}

/**
 * A browser context with one page whose console errors, page errors and failed requests
 * are collected; `assertClean()` fails the test if there were any.
 */
export async function newPage(browser, name) {
  const context = await browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`[${name}] console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`[${name}] page error: ${e.message}`));
  page.setDefaultTimeout(15_000);
  return {
    context,
    page,
    problems,
    assertClean() {
      if (problems.length) throw new Error(`console errors:\n${problems.join('\n')}`);
    },
  };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** A token minted by the development sign-in endpoint (for API set-up, not UI steps). */
export async function token(base, role, sub, name) {
  const r = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role, sub, name }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`sign-in failed: ${JSON.stringify(body)}`);
  return body.token;
}

/** A GraphQL call with a token, for set-up; throws on errors. */
export async function api(base, tok, query, variables = {}) {
  const r = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await r.json();
  if (body.errors) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** Signs in through the /login page as a person would. */
export async function signIn(page, base, role, sub, name) {
  await page.goto(`${base}/login?role=${role}`);
  await page.locator('[data-test=login-role]').selectOption(role);
  await page.locator('[data-test=login-sub]').fill(sub);
  await page.locator('[data-test=login-name]').fill(name);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/login')),
    page.locator('[data-test=login-submit]').click(),
  ]);
}

/** A valid PNG (240×140, diagonal stripes of one colour on white) to upload as an image. */
export function pngFile(name, rgb = [200, 16, 46]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const w = 240;
  const h = 140;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.concat(Array.from({ length: h }, (_, y) => Buffer.concat([
    Buffer.from([0]),
    Buffer.from(Array.from({ length: w }, (_, x) => (((x + y) >> 4) % 2 ? rgb : [255, 255, 255])).flat()),
  ])));
  const buffer = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return { name, mimeType: 'image/png', buffer };
}
