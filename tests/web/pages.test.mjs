// The pages under their Content-Security-Policy: GraphiQL works from the files in the
// binary (no CDN, no inline script), and a signed download link clicked after it expired is
// fetched with the Authorization header instead (no token ever goes into a URL).
// Any CSP violation is a console error, which fails the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launch, newPage, screenshot, signIn, token, api } from './helpers.mjs';

const T = (page, id) => page.locator(`[data-test="${id}"]`);

test('GraphiQL loads from the binary under its policy and reads the schema', async () => {
  // The embedded default: introspection on, so GraphiQL is served.
  const s = await startServer();
  const browser = await launch();
  try {
    const p = await newPage(browser, 'graphiql');
    const foreign = [];
    p.page.on('request', (r) => {
      if (!r.url().startsWith(s.base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) foreign.push(r.url());
    });
    const schema = p.page.waitForResponse((r) => r.url() === `${s.base}/graphql` && r.request().method() === 'POST');
    const res = await p.page.goto(`${s.base}/graphql`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /script-src 'self';/);
    await p.page.locator('.graphiql-container').waitFor();
    const body = await (await schema).json();
    assert.ok(body.data?.__schema?.queryType, `introspection: ${JSON.stringify(body).slice(0, 300)}`);
    // The documentation explorer shows the schema's root types.
    await p.page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click();
    await p.page.locator('.graphiql-doc-explorer').getByText('Query', { exact: false }).first().waitFor();
    // The settings dialog (its components add <style> elements while open).
    await p.page.locator('.graphiql-sidebar button[aria-label="Open settings dialog"]').click();
    await p.page.locator('.graphiql-dialog').waitFor();
    await p.page.keyboard.press('Escape');
    await screenshot(p.page, '00-graphiql');
    assert.deepEqual(foreign, [], 'GraphiQL asked another origin');
    p.assertClean();
  } finally {
    await browser.close();
    await s.stop();
  }
});

/** Uploads `bytes` as `fileName` for the holder of `tok` (GraphQL multipart request). */
async function uploadFile(base, tok, fileName, bytes, type) {
  const form = new FormData();
  form.append('operations', JSON.stringify({
    query: 'mutation($file: Upload!) { uploadAttachment(file: $file) { id url } }',
    variables: { file: null },
  }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([bytes], { type }), fileName);
  const r = await fetch(`${base}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${tok}` }, body: form });
  const out = await r.json();
  if (out.errors) throw new Error(JSON.stringify(out.errors));
  return out.data.uploadAttachment;
}

test('a download link clicked after it expired still downloads, through the header', async () => {
  const s = await startServer({ TAXDESK_LINK_TTL: '2s' });
  const browser = await launch();
  try {
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n');
    const tp = await token(s.base, 'taxpayer', 'tp7', '孙八');
    const att = await uploadFile(s.base, tp, '申报表.pdf', pdf, 'application/pdf');
    await api(s.base, tp, 'mutation($i: LeaveMessageInput!) { leaveMessage(input: $i) { id } }', {
      i: { category: '其他', content: '请看附件', attachmentIds: [att.id] },
    });

    const p = await newPage(browser, 'staff');
    await signIn(p.page, s.base, 'staff', 's7', '周九');
    await T(p.page, 'tab-leave').click();
    const link = T(p.page, 'lm-item').locator('.atts a[download]').first();
    await link.waitFor();
    const href = await link.getAttribute('href');
    assert.match(href, /^\/attachments\/[^?]+\?user=s7&exp=\d+&sig=[0-9a-f]{64}$/);
    assert.doesNotMatch(href, /token=/);
    // Let it expire: the server refuses it now.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await fetch(s.base + href)).status, 401);

    const [download] = await Promise.all([p.page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), '申报表.pdf');
    assert.deepEqual(readFileSync(await download.path()), pdf);
    p.assertClean();
  } finally {
    await browser.close();
    await s.stop();
  }
});
