// What the binary serves of the embedded front end, without a browser: pages, assets with
// their content types, the coded 404 for anything else, and the development sign-in that
// exists only while no JWT key is configured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, newPage, screenshot } from './helpers.mjs';

test('pages and assets are served with their content types; unknown paths get the coded 404', async () => {
  const s = await startServer();
  try {
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/staff', 'text/html'],
      ['/login', 'text/html'],
      ['/js/graphql.js', 'text/javascript'],
      ['/css/base.css', 'text/css'],
      ['/portal/app.js', 'text/javascript'],
      ['/favicon.svg', 'image/svg+xml'],
    ]) {
      const r = await fetch(s.base + path);
      assert.equal(r.status, 200, path);
      assert.ok(r.headers.get('content-type').startsWith(type), `${path}: ${r.headers.get('content-type')}`);
    }
    const home = await (await fetch(`${s.base}/`)).text();
    assert.match(home, /<html data-dev-login lang="zh-CN">/, 'the embedded default marks the page');
    for (const path of ['/nope', '/portal/index.html', '/README.md']) {
      const r = await fetch(s.base + path);
      assert.equal(r.status, 404, path);
      const body = await r.json();
      assert.equal(body.errors[0].extensions.code, 'NOT_FOUND', path);
    }
    // The development sign-in mints a token the API accepts.
    const bad = await fetch(`${s.base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"king","sub":"x"}' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).errors[0].extensions.code, 'INVALID_INPUT');
    const r = await fetch(`${s.base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'staff', sub: 's9', name: '王五' }),
    });
    assert.equal(r.status, 200);
    const { token } = await r.json();
    const me = await fetch(`${s.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ me { id role displayName } }' }),
    });
    assert.deepEqual((await me.json()).data.me, { id: 's9', role: 'STAFF', displayName: '王五' });

    // In a browser, the portal without a token goes to the sign-in page.
    const browser = await launch();
    try {
      const p = await newPage(browser, 'login');
      await p.page.goto(`${s.base}/`);
      await p.page.waitForURL((u) => u.pathname === '/login');
      await p.page.locator('[data-test=login-form]').waitFor();
      await screenshot(p.page, '00-login');
      p.assertClean();
    } finally {
      await browser.close();
    }
  } finally {
    await s.stop();
  }
});

test('with a configured key there is no /login page and no token endpoint', async () => {
  const s = await startServer({ TAXDESK_JWT_SECRET: 'configured-by-the-e-tax-bureau-0123456789' });
  try {
    const home = await fetch(`${s.base}/`);
    assert.equal(home.status, 200);
    assert.doesNotMatch(await home.text(), /data-dev-login/);
    const page = await fetch(`${s.base}/login`);
    assert.equal(page.status, 404);
    assert.equal((await page.json()).errors[0].extensions.code, 'NOT_FOUND');
    const mint = await fetch(`${s.base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"admin","sub":"x"}' });
    assert.equal(mint.status, 404);

    // The portal without the e-tax site's token says where to come from, without errors.
    const browser = await launch();
    try {
      const p = await newPage(browser, 'portal');
      await p.page.goto(`${s.base}/`);
      await p.page.locator('[data-test=no-token]', { hasText: '请从电子税务局进入' }).waitFor();
      await screenshot(p.page, '00-portal-configured-key-no-token');
      p.assertClean();
    } finally {
      await browser.close();
    }
  } finally {
    await s.stop();
  }
});
