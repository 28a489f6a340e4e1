// The agent 悦悦 and its learning loop in two browsers: the portal greets as 悦悦 and the
// workbench transcript signs the bot's messages 悦悦; questions the bot failed land in the
// workbench's 问题审核 tab, where staff link one to an FAQ found by search, make a new FAQ
// from another, and dismiss a third — and the linked questions are answered from then on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newPage, screenshot, signIn, token, api,
} from './helpers.mjs';

// Questions the seed cannot answer.
const PARKING = '办税大厅门口那块能不能停车';
const CANTEEN = '你们食堂中午对外卖饭吗';
const DINNER = '今天晚上吃什么好呢';
const PARKING_FAQ = '办税服务厅有访客停车位吗？';

let server;
let browser;

before(async () => {
  server = await startServer({ TAXDESK_CALENDAR: 'always' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const T = (page, id) => page.locator(`[data-test="${id}"]`);

async function askInChat(page, text, nth) {
  await T(page, 'chat-input').fill(text);
  await T(page, 'chat-send').click();
  // The question and the bot's reply.
  await T(page, 'message').nth(nth).waitFor();
}

test('悦悦 greets on the portal, the failed questions go to review, staff link, create and dismiss', async () => {
  const staffToken = await token(server.base, 'staff', 's1', '李四');
  // Set-up not under test: an FAQ to link to, and the agent away so the chat waits.
  await api(server.base, staffToken, 'mutation($i: UpsertFaqInput!) { upsertFaq(input: $i) { id } }', {
    i: { category: '其他', question: PARKING_FAQ, answer: '大院内设有访客车位，免费停放两小时。' },
  });
  await api(server.base, staffToken, 'mutation { setAgentStatus(input: {status: AWAY}) { status } }');

  // The portal: 悦悦 by name, in the title and the greeting.
  const tp = await newPage(browser, 'portal');
  await signIn(tp.page, server.base, 'taxpayer', 'tp1', '张三');
  await tp.page.waitForSelector('body[data-ready="1"]');
  assert.match(await T(tp.page, 'chat-title').textContent(), /悦悦/);
  const greeting = T(tp.page, 'message').first();
  assert.match(await greeting.textContent(), /悦悦/);
  assert.doesNotMatch(await greeting.textContent(), /小税|bot/i);
  await askInChat(tp.page, PARKING, 2);
  await askInChat(tp.page, CANTEEN, 4);
  await askInChat(tp.page, DINNER, 6);
  await T(tp.page, 'chat-input').fill('转人工');
  await T(tp.page, 'chat-send').click();
  await tp.page.waitForSelector('[data-test=chat-window][data-status="QUEUED"]');
  await screenshot(tp.page, '20-portal-yueyue');
  const tpToken = await tp.page.evaluate(() => localStorage.getItem('taxdesk.token'));

  // The workbench: going online takes the chat; the bot's lines are signed 悦悦.
  const staff = await newPage(browser, 'staff');
  const { page } = staff;
  await signIn(page, server.base, 'staff', 's1', '李四');
  await page.waitForSelector('body[data-ready="true"]');
  await T(page, 'presence-online').click();
  await page.waitForSelector('[data-test=chat-panel][data-status="ACTIVE"]');
  const botLines = page.locator('[data-test=message][data-role="BOT"]');
  await botLines.first().waitFor();
  assert.ok(await botLines.count() >= 4, 'greeting and three replies');
  for (const meta of await botLines.locator('.meta').allTextContents()) {
    assert.match(meta, /^悦悦 · /, meta);
  }
  await screenshot(page, '21-staff-transcript-yueyue');

  // 问题审核: the three unanswered questions and the handed-over one, with why.
  await T(page, 'tab-unanswered').click();
  const item = (text, reason = 'UNANSWERED') => T(page, 'unanswered-item')
    .filter({ has: page.locator('[data-test=review-text]', { hasText: text }) })
    .and(page.locator(`[data-reason="${reason}"]`));
  await item(PARKING).waitFor();
  await item(CANTEEN).waitFor();
  await item(DINNER).waitFor();
  await item(DINNER, 'HANDED_OVER').waitFor();
  assert.equal(await item(DINNER, 'HANDED_OVER').locator('[data-test=review-reason]').textContent(), '转了人工');
  await screenshot(page, '22-staff-review-queue');

  // Link: search the FAQs from the question, choose the parking one.
  await item(PARKING).locator('[data-test=review-link]').click();
  const form = item(PARKING).locator('[data-test=review-link-form]');
  await form.locator('[data-test=review-link-search]').fill('停车位');
  await form.locator('[data-test=review-link-search-submit]').click();
  const result = form.locator('[data-test=review-link-result]', { hasText: PARKING_FAQ });
  await result.waitFor();
  await result.locator('[data-test=review-link-choose]').click();
  await item(PARKING).waitFor({ state: 'detached' });

  // New FAQ from it: the editor comes prefilled; saving links the question to the new FAQ.
  await item(CANTEEN).locator('[data-test=unanswered-to-faq]').click();
  const editor = page.locator('[data-test=review-form-card] [data-test=kb-form]');
  await editor.waitFor();
  assert.equal(await editor.locator('[data-test=kb-question]').inputValue(), CANTEEN);
  await editor.locator('[data-test=kb-answer]').fill('机关食堂不对外开放，附近有便民餐厅。');
  await editor.locator('[data-test=kb-save]').click();
  await item(CANTEEN).waitFor({ state: 'detached' });

  // Dismiss: out of the open queue.
  await item(DINNER).locator('[data-test=review-dismiss]').click();
  await item(DINNER).waitFor({ state: 'detached' });
  await item(DINNER, 'HANDED_OVER').waitFor();

  // The linked ones, listed as such with their FAQ.
  await T(page, 'review-filter-status').selectOption('LINKED');
  await item(PARKING).locator('[data-test=review-linked-faq]', { hasText: PARKING_FAQ }).waitFor();
  await item(CANTEEN).locator('[data-test=review-linked-faq]').waitFor();
  assert.equal(await item(CANTEEN).locator('[data-test=review-link]').count(), 0, 'no actions on a linked question');
  await T(page, 'review-filter-status').selectOption('DISMISSED');
  await item(DINNER).waitFor();
  await screenshot(page, '23-staff-review-linked');

  // What was linked is answered now.
  for (const [q, expected] of [[PARKING, PARKING_FAQ], [CANTEEN, CANTEEN]]) {
    const { askBot } = await api(server.base, tpToken, 'mutation($t: String!) { askBot(input: {text: $t}) { answered faq { question } } }', { t: q });
    assert.equal(askBot.answered, true, q);
    assert.equal(askBot.faq.question, expected, q);
  }
  tp.assertClean();
  staff.assertClean();
});
