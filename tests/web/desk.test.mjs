// The help desk in two browsers: a taxpayer on the portal (`/`) and a staff member on the
// workbench (`/staff`). Every step of issue #8's "done when" is a UI action with a visible
// result; only set-up that is not under test (an agent's AWAY presence, the work order to
// urge) goes through the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newPage, screenshot, signIn, token, api, pngFile,
} from './helpers.mjs';

const SEED_QUESTION = '什么是数电发票？';
const SEED_ANSWER = '数电发票是全面数字化的电子发票';

let server;
let browser;
let tp; // the taxpayer's page
let staff; // the staff member's page
let staffToken;
let tpToken;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const T = (page, id) => page.locator(`[data-test="${id}"]`);

test('the taxpayer signs in, asks the bot a seed question, marks the answer useful and favourites it', async () => {
  tp = await newPage(browser, 'portal');
  const { page } = tp;
  await signIn(page, server.base, 'taxpayer', 'tp1', '张三');
  await page.waitForSelector('body[data-ready="1"]');
  tpToken = await page.evaluate(() => localStorage.getItem('taxdesk.token'));

  await T(page, 'chat-input').fill(SEED_QUESTION);
  await T(page, 'chat-send').click();
  const answer = page.locator('[data-test=message]', { hasText: SEED_ANSWER }).last();
  await answer.waitFor();
  // The FAQ behind the answer is found, so the vote and favourite buttons appear.
  await answer.locator('[data-test=answer-useful]').click();
  await page.waitForSelector('[data-test=answer-useful].active');
  await answer.locator('[data-test=answer-favorite]').click();
  await assert.doesNotReject(answer.locator('[data-test=answer-favorite]', { hasText: '已收藏' }).waitFor());

  await T(page, 'tab-favorites').click();
  await T(page, 'favorite').filter({ hasText: SEED_QUESTION }).waitFor();
  await screenshot(page, '01-portal-bot-answer');
  tp.assertClean();
});

test('the taxpayer types 转人工 and sees the queue position', async () => {
  const { page } = tp;
  // Set-up: a staff member is at work but away, so the chat waits in the queue.
  staffToken = await token(server.base, 'staff', 's1', '李四');
  await api(server.base, staffToken, 'mutation { setAgentStatus(input: {status: AWAY}) { status } }');

  await T(page, 'chat-input').fill('转人工');
  await T(page, 'chat-send').click();
  await page.waitForSelector('[data-test=chat-window][data-status="QUEUED"]');
  const queue = T(page, 'queue-position');
  await queue.waitFor();
  assert.match(await queue.textContent(), /第 1 位/);
  await screenshot(page, '02-portal-queued');
  tp.assertClean();
});

test('a staff member goes online in a second browser and gets the chat', async () => {
  staff = await newPage(browser, 'staff');
  const { page } = staff;
  await signIn(page, server.base, 'staff', 's1', '李四');
  assert.equal(new URL(page.url()).pathname, '/staff');
  await page.waitForSelector('body[data-ready="true"]');
  await T(page, 'presence-online').click();
  await page.waitForSelector('[data-test=presence-status][data-status="ONLINE"]');
  // Going online routes the waiting chat to this agent.
  const item = T(page, 'active-item').first();
  await item.waitFor();
  await item.click();
  await page.waitForSelector('[data-test=chat-panel][data-status="ACTIVE"]');
  // The taxpayer sees the hand-over.
  await tp.page.waitForSelector('[data-test=chat-window][data-status="ACTIVE"]');
  await T(tp.page, 'chat-title').filter({ hasText: '李四' }).waitFor();
  tp.assertClean();
  staff.assertClean();
});

test('they exchange a message and an image each way', async () => {
  const tpPage = tp.page;
  const sPage = staff.page;
  // Taxpayer → staff: text.
  await T(tpPage, 'chat-input').fill('您好，我开票时提示额度不足');
  await T(tpPage, 'chat-send').click();
  await T(sPage, 'chat-messages').locator('[data-test=message]', { hasText: '开票时提示额度不足' }).waitFor();
  // Staff → taxpayer: text.
  await T(sPage, 'chat-input').fill('您好，我来帮您查一下额度');
  await T(sPage, 'chat-send').click();
  await T(tpPage, 'messages').locator('[data-test=message]', { hasText: '我来帮您查一下额度' }).waitFor();
  // Taxpayer → staff: an image, shown inline on both sides.
  await T(tpPage, 'image-input').setInputFiles(pngFile('额度截图.png', [31, 111, 209]));
  await tpPage.locator('[data-test=message][data-kind=IMAGE] img[data-test=message-image]').first().waitFor();
  const imgAtStaff = T(sPage, 'chat-messages').locator('[data-test=message][data-kind=IMAGE] [data-test=message-image]').first();
  await imgAtStaff.waitFor();
  await sPage.waitForFunction((el) => el.complete && el.naturalWidth > 0, await imgAtStaff.elementHandle());
  // Staff → taxpayer: an image.
  await T(sPage, 'chat-image-input').setInputFiles(pngFile('操作示意.png', [26, 138, 74]));
  const imgs = T(tpPage, 'messages').locator('[data-test=message][data-kind=IMAGE] img[data-test=message-image]');
  await tpPage.waitForFunction(() => document.querySelectorAll('[data-test=messages] [data-kind=IMAGE] img').length >= 2);
  await tpPage.waitForFunction((el) => el.complete && el.naturalWidth > 0, await imgs.nth(1).elementHandle());
  await screenshot(tpPage, '03-portal-chat');
  await screenshot(sPage, '04-staff-workbench');
  tp.assertClean();
  staff.assertClean();
});

test('the taxpayer sends a file and asks for 远程协助, which the staff member accepts', async () => {
  const tpPage = tp.page;
  const sPage = staff.page;
  const pdf = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n');
  await T(tpPage, 'file-input').setInputFiles({ name: '申报表.pdf', mimeType: 'application/pdf', buffer: pdf });
  await T(sPage, 'chat-messages').locator('[data-test=message][data-kind=FILE] [data-test=message-file]', { hasText: '申报表.pdf' }).waitFor();
  await T(tpPage, 'remote-assist').click();
  await tpPage.waitForSelector('[data-test=channel-bar][data-status="REQUESTED"]');
  await T(sPage, 'assist-accept').click();
  await sPage.waitForSelector('[data-test=assist-panel][data-status="ACTIVE"]');
  await tpPage.waitForSelector('[data-test=channel-bar][data-status="ACTIVE"]');
  await T(tpPage, 'channel-end').click();
  await sPage.waitForSelector('[data-test=assist-panel][data-status="ENDED"]');
  await screenshot(tpPage, '04a-portal-remote-assist-ended');
  tp.assertClean();
  staff.assertClean();
});

test('the staff member proposes a video call and the taxpayer accepts it (同意)', async () => {
  const tpPage = tp.page;
  const sPage = staff.page;
  await T(sPage, 'chat-call-video').click();
  await T(tpPage, 'call-accept').click();
  // Both sides see the call running; media flows over WebRTC signalled through the API
  // (Chromium's fake camera and microphone).
  await sPage.waitForSelector('[data-test=call-panel][data-status="ACTIVE"]');
  await tpPage.waitForSelector('[data-test=channel-bar][data-status="ACTIVE"]');
  await sPage.waitForFunction(() => {
    const v = document.querySelector('[data-test=remote-media]');
    return v && v.srcObject && v.readyState >= 2;
  }, null, { timeout: 20_000 });
  await screenshot(sPage, '04b-staff-video-call');
  await T(tpPage, 'channel-end').click();
  await sPage.waitForSelector('[data-test=call-panel][data-status="ENDED"]');
  tp.assertClean();
  staff.assertClean();
});

test('the staff member ends the chat; the taxpayer rates it and the rating to-do leaves 我的待办', async () => {
  const tpPage = tp.page;
  await T(staff.page, 'chat-end').click();
  await staff.page.waitForFunction(() => {
    const p = document.querySelector('[data-test=chat-panel]');
    return !p || p.dataset.status === 'ENDED' || p.offsetParent === null;
  });
  // The rating dialog opens by itself; "later" first, to see the to-do.
  await T(tpPage, 'rate-chat-dialog').waitFor();
  await T(tpPage, 'rate-later').click();
  await T(tpPage, 'tab-todos').click();
  const todo = tpPage.locator('[data-test=todo][data-kind=RATE_CHAT]');
  await todo.waitFor();
  await todo.locator('[data-test=todo-go]').click();
  await T(tpPage, 'rate-chat-dialog').waitFor();
  await T(tpPage, 'rate-resolved').check();
  await T(tpPage, 'star-4').click();
  await T(tpPage, 'rate-comment').fill('回复及时，问题已解决');
  await T(tpPage, 'rate-submit').click();
  await tpPage.waitForFunction(() => !document.querySelector('[data-test=todo][data-kind=RATE_CHAT]'));
  await screenshot(tpPage, '05-portal-rated');
  tp.assertClean();
  staff.assertClean();
});

test('the taxpayer books an appointment with the slot picker', async () => {
  const { page } = tp;
  await T(page, 'tab-bookings').click();
  await T(page, 'bookings-mine').click();
  await T(page, 'new-booking').click();
  await T(page, 'book-dialog').waitFor();
  const slot = page.locator('[data-test=slot]:not([disabled])').first();
  await slot.waitFor();
  await slot.click();
  await T(page, 'book-note').fill('咨询发票额度调整');
  await T(page, 'book-submit').click();
  await page.locator('[data-test=booking][data-status=CONFIRMED]', { hasText: '咨询发票额度调整' }).waitFor();
  await screenshot(page, '05b-portal-booked');
  tp.assertClean();
});

test('a staff invitation appears under 税局邀请 and is accepted', async () => {
  const { page } = tp;
  // The staff member invites tp1 from the workbench, two days from now at 10:00 (Shanghai).
  const sPage = staff.page;
  await T(sPage, 'tab-bookings').click();
  const day = new Date(Date.now() + 2 * 86400000).toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
  await T(sPage, 'invite-taxpayer').fill('tp1');
  await T(sPage, 'invite-start').fill(`${day}T10:00`);
  await T(sPage, 'invite-note').fill('请来核对发票额度');
  await T(sPage, 'invite-submit').click();
  await sPage.waitForSelector('[data-test=invite-result][data-status="INVITED"]');
  // The notification is pushed; the to-do badge counts it.
  await page.waitForFunction(() => Number(document.querySelector('[data-test=badge-todos]').dataset.count) > 0);
  await T(page, 'tab-bookings').click();
  await T(page, 'bookings-invited').click();
  const invitation = T(page, 'booking').filter({ hasText: '请来核对发票额度' });
  await invitation.waitFor();
  assert.equal(await invitation.getAttribute('data-status'), 'INVITED');
  await invitation.locator('[data-test=booking-accept]').click();
  await page.locator('[data-test=booking][data-status=CONFIRMED]', { hasText: '请来核对发票额度' }).waitFor();
  // Accepted: no accept button any more, cancelling is what is left.
  const confirmed = page.locator('[data-test=booking][data-status=CONFIRMED]', { hasText: '请来核对发票额度' });
  assert.equal(await confirmed.locator('[data-test=booking-accept]').count(), 0);
  await confirmed.locator('[data-test=booking-cancel]').waitFor();
  await screenshot(page, '06-portal-invitation-accepted');
  tp.assertClean();
  staff.assertClean();
});

test('a work order is urged and its 催办 button disappears for the cool-down', async () => {
  const { page } = tp;
  // Set-up through the API: the taxpayer's own work order.
  await api(server.base, tpToken, `mutation { createWorkOrder(input: {title: "发票额度不足", description: "开票时提示额度不足", category: "发票业务"}) { id } }`);
  await T(page, 'tab-orders').click();
  const order = T(page, 'order').filter({ hasText: '发票额度不足' });
  await order.waitFor();
  await order.locator('[data-test=order-urge]').click();
  await T(page, 'urge-reason').fill('很急，影响开票');
  await T(page, 'urge-submit').click();
  await order.locator('[data-test=urge-count]', { hasText: '已催办 1 次' }).waitFor();
  assert.equal(await order.locator('[data-test=order-urge]').count(), 0, 'no 催办 during the cool-down');
  // Still allowed by the server: terminating; and the details show the urge in the history.
  await order.locator('[data-test=order-terminate]').waitFor();
  await order.locator('[data-test=order-detail]').click();
  await order.locator('[data-test=order-history]', { hasText: '催办' }).waitFor();
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  await T(page, 'tab-orders').click();
  await T(page, 'order').filter({ hasText: '发票额度不足' }).waitFor();
  assert.equal(await T(page, 'order').filter({ hasText: '发票额度不足' }).locator('[data-test=order-urge]').count(), 0);
  await screenshot(page, '07-portal-work-order-urged');
  tp.assertClean();
});

test('minimise and reopen the chat, ask a 热点推荐 question, send an emoji, close the chat', async () => {
  const { page } = tp;
  await T(page, 'chat-minimize').click();
  await T(page, 'chat-window').waitFor({ state: 'hidden' });
  await T(page, 'chat-launcher').click();
  await T(page, 'chat-window').waitFor();
  await page.waitForSelector('[data-test=chat-window][data-status="BOT"]');
  const hot = T(page, 'hot-question').first();
  const question = (await hot.textContent()).trim();
  await hot.click();
  await T(page, 'messages').locator('.msg.mine', { hasText: question }).waitFor();
  // The virtual agent answers after it.
  await page.waitForFunction(() => {
    const all = [...document.querySelectorAll('[data-test=messages] [data-test=message]')];
    return all.length >= 3 && !all[all.length - 1].classList.contains('mine');
  });
  await T(page, 'emoji-button').click();
  await T(page, 'emoji').first().click();
  await T(page, 'messages').locator('[data-test=message][data-kind=EMOJI]').waitFor();
  await T(page, 'chat-close').click();
  await T(page, 'confirm-close').click();
  await T(page, 'chat-window').waitFor({ state: 'hidden' });
  await T(page, 'chat-launcher').waitFor();
  await screenshot(page, '09-portal-chat-closed');
  tp.assertClean();
});
