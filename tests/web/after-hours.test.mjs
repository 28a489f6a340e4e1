// After hours (TAXDESK_CALENDAR=never) 转人工 is refused: the portal offers 在线留言, the
// message lands in 我的留言, and a staff reply is pushed back with an unread badge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, newPage, screenshot, signIn, token, api } from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ TAXDESK_CALENDAR: 'never' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const T = (page, id) => page.locator(`[data-test="${id}"]`);

test('refused after hours, the taxpayer leaves a message and sees the reply; 加载更多 pages back', async () => {
  const tp = await newPage(browser, 'portal');
  const { page } = tp;
  await signIn(page, server.base, 'taxpayer', 'tp2', '赵六');
  await page.waitForSelector('body[data-ready="1"]');
  await T(page, 'chat-input').fill('发票额度怎么提高');
  await T(page, 'chat-send').click();
  await T(page, 'message').nth(2).waitFor();
  await T(page, 'request-human').click();
  const offer = T(page, 'offer-bar');
  await offer.filter({ hasText: '当前不在人工服务时间' }).waitFor();
  await T(page, 'offer-leave-message').click();
  await T(page, 'leave-message-dialog').waitFor();
  assert.equal(await T(page, 'leave-content').inputValue(), '发票额度怎么提高');
  // Pre-filled from the refusal's offer: the skill group asked for (the default, 其他).
  assert.equal(await T(page, 'leave-category').inputValue(), '其他');
  await T(page, 'leave-contact').fill('13800000000');
  await T(page, 'leave-submit').click();
  await T(page, 'tab-leave').click();
  const item = T(page, 'leave-message').filter({ hasText: '发票额度怎么提高' });
  await item.waitFor();

  // A staff member replies (set-up through the API); the portal is told by subscription.
  const staff = await token(server.base, 'staff', 's2', '钱七');
  const { leaveMessages } = await api(server.base, staff, '{ leaveMessages(first: 5) { edges { node { id } } } }');
  await api(server.base, staff, 'mutation($i: ReplyLeaveMessageInput!) { replyLeaveMessage(input: $i) { id } }', {
    i: { id: leaveMessages.edges[0].node.id, content: '您好，可在电子税务局申请调整发票额度。' },
  });
  await item.locator('[data-test=leave-reply]', { hasText: '申请调整发票额度' }).waitFor();
  await screenshot(page, '08-portal-leave-message-replied');

  // 加载更多: a long conversation (set-up through the API) shows its last 20 messages first.
  const tok = await page.evaluate(() => localStorage.getItem('taxdesk.token'));
  const { openChat } = await api(server.base, tok, 'mutation { openChat { id } }');
  for (let i = 1; i <= 12; i += 1) {
    await api(server.base, tok, 'mutation($i: SendMessageInput!) { sendMessage(input: $i) { id } }', {
      i: { sessionId: openChat.id, kind: 'TEXT', text: `第${i}个问题：发票怎么开？` },
    });
  }
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  const messages = T(page, 'messages').locator('[data-test=message]');
  await T(page, 'load-more').waitFor();
  const before = await messages.count();
  assert.equal(before, 20);
  await T(page, 'load-more').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-test=messages] [data-test=message]').length > n, before);
  await T(page, 'messages').locator('[data-test=message]', { hasText: '发票额度怎么提高' }).first().waitFor();
  tp.assertClean();
});
