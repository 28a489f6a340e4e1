// The taxpayer portal: chat with the virtual agent and staff, and the personal centre.
// Every button on a state-machine object comes from the server's `allowedActions`.
import {
  getToken, setToken, gql, GqlError, subscribe, upload, esc,
} from '/js/graphql.js';

const $ = (id) => document.getElementById(id);

// ---- small helpers ----------------------------------------------------------------------

function toast(text, kind = '') {
  const t = document.createElement('div');
  t.className = `toast ${kind}`;
  t.textContent = text;
  t.dataset.test = 'toast';
  $('toasts').append(t);
  setTimeout(() => t.remove(), 4000);
}

function errorText(e) {
  if (e instanceof GqlError) return e.readable;
  return '操作失败，请稍后重试';
}

/** Runs an action and shows its error to the person instead of throwing. */
async function run(fn) {
  try {
    return await fn();
  } catch (e) {
    toast(errorText(e), 'error');
    return undefined;
  }
}

const fmtTime = (s) => (s ? new Date(s).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }) : '');
const fmtHm = (s) => new Date(s).toLocaleTimeString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false, hour: '2-digit', minute: '2-digit' });
const STATUS_TEXT = {
  SUBMITTED: '已提交', DISPATCHED: '已派单', IN_PROGRESS: '处理中', COMPLETED: '已办结', TERMINATED: '已终止',
  INVITED: '待答复', CONFIRMED: '已确认', REJECTED: '已拒绝', EXPIRED: '已过期', CANCELLED: '已取消',
  IN_SESSION: '进行中', NO_SHOW: '未到场', REPLIED: '已回复', CLOSED: '已关闭',
  BOT: '智能客服', QUEUED: '排队中', ACTIVE: '人工服务中', ENDED: '已结束', ABANDONED: '已离开',
};
const METHOD_TEXT = { TEXT: '文字', VOICE: '语音', VIDEO: '视频' };
const PRIORITY_TEXT = { NORMAL: '普通', HIGH: '较高', URGENT: '紧急' };
const statusTag = (s) => {
  const cls = ['COMPLETED', 'CONFIRMED', 'REPLIED'].includes(s) ? 'ok'
    : ['TERMINATED', 'REJECTED', 'CANCELLED', 'EXPIRED', 'NO_SHOW'].includes(s) ? 'danger' : 'warn';
  return `<span class="tag ${cls}" data-test="status">${esc(STATUS_TEXT[s] || s)}</span>`;
};

/** Shows a dialog built from `html`; resolves the form's values on submit, null on cancel. */
function dialog(html, { onOpen } = {}) {
  const d = $('dlg');
  d.innerHTML = html;
  return new Promise((resolve) => {
    const form = d.querySelector('form');
    const done = (v) => { d.close(); resolve(v); };
    d.querySelectorAll('[data-cancel]').forEach((b) => b.addEventListener('click', () => done(null)));
    d.onclose = () => resolve(null);
    form?.addEventListener('submit', (ev) => {
      ev.preventDefault();
      done(Object.fromEntries(new FormData(form).entries()));
    });
    d.showModal();
    onOpen?.(d);
  });
}

// ---- identity ---------------------------------------------------------------------------

let me = null;
// The virtual agent as the server names it (botProfile; public, so it is read before sign-in).
const bot = { name: '悦悦', avatarUrl: null };

async function loadBotProfile() {
  try {
    Object.assign(bot, (await gql('query PortalBotProfile { botProfile { name greeting avatarUrl } }')).botProfile);
  } catch { /* the default name stands */ }
  $('botName').textContent = bot.name;
  const img = $('botAvatar');
  if (bot.avatarUrl) {
    img.src = bot.avatarUrl;
    img.alt = bot.name;
    img.classList.remove('hidden');
  }
}

async function signIn() {
  if (!getToken()) {
    // The embedded default has a sign-in page (the server marks <html data-dev-login>);
    // behind the e-tax site the token comes with the link, as ?token=.
    if (document.documentElement.hasAttribute('data-dev-login')) {
      location.href = '/login?role=taxpayer&next=/';
      return false;
    }
    document.body.innerHTML = '<main class="card no-token" data-test="no-token">请从电子税务局进入征纳互动（未携带登录凭证）。</main>';
    document.body.dataset.ready = 'no-token';
    return false;
  }
  try {
    me = (await gql('{ me { id role displayName taxpayerId } }')).me;
  } catch (e) {
    if (e instanceof GqlError && e.code === 'UNAUTHENTICATED') {
      setToken('');
      location.href = '/login?role=taxpayer&next=/';
      return false;
    }
    throw e;
  }
  if (me.role !== 'TAXPAYER') {
    location.href = '/staff';
    return false;
  }
  $('who').textContent = `${me.displayName}${me.taxpayerId ? `（${me.taxpayerId}）` : ''}`;
  return true;
}

$('logout').addEventListener('click', () => {
  setToken('');
  location.href = '/login?role=taxpayer&next=/';
});

// ---- home: quick links, hot questions, packages -------------------------------------------

async function loadHome() {
  const d = await gql(`{
    quickLinks { title url }
    hotQuestions(first: 8) { id question }
    qaPackages { id title faqs { id question } }
  }`);
  $('quickLinks').innerHTML = d.quickLinks.map((l) =>
    `<a href="${esc(l.url)}" target="_blank" rel="noopener" data-test="quick-link">${esc(l.title)}</a>`).join('')
    || '<div class="empty">暂无</div>';
  $('hot').innerHTML = d.hotQuestions.map((f) =>
    `<li><span class="q" data-q="${esc(f.question)}" data-test="hot-question">${esc(f.question)}</span></li>`).join('')
    || '<li class="empty">暂无</li>';
  $('packages').innerHTML = d.qaPackages.map((p) => `<details class="pkg" data-test="qa-package">
      <summary>${esc(p.title)}</summary>
      <ul>${p.faqs.map((f) => `<li><span class="q" data-q="${esc(f.question)}">${esc(f.question)}</span></li>`).join('')}</ul>
    </details>`).join('') || '<div class="empty">暂无</div>';
}

// A click on any question anywhere asks it in the chat.
document.addEventListener('click', (ev) => {
  const q = ev.target.closest('[data-q]');
  if (q) {
    ev.preventDefault();
    showChat();
    ask(q.dataset.q);
  }
});

// ---- chat -------------------------------------------------------------------------------

const SESSION_FIELDS = `id status skillGroup queuePosition estimatedWaitSeconds lastSeq
  agent { id displayName } rating { resolved satisfaction comment } allowedActions`;
const MESSAGE_FIELDS = `id seq kind text senderRole sender { id displayName }
  attachment { id fileName contentType size url } faq { id } suggestions { id question } createdAt`;

const chat = {
  session: null,
  unsubscribe: null,
  seqs: new Set(),
  oldestCursor: null,
  lastQuestion: '',
  // What the 在线留言 offer is pre-filled with (a refused hand-over, or a long wait).
  offerQuestion: '',
  offerCategory: '',
  minimized: false,
  channels: new Map(), // channel id -> { kind, status }
  pc: null,
  stream: null,
  ratingShownFor: null,
};

function showChat() {
  chat.minimized = false;
  $('chat').classList.remove('closed');
  $('launcher').classList.add('hidden');
  $('badgeChat').textContent = '';
  if (!chat.session || ['ENDED', 'ABANDONED'].includes(chat.session.status)) openChat();
}

$('chatMin').addEventListener('click', () => {
  chat.minimized = true;
  $('chat').classList.add('closed');
  $('launcher').classList.remove('hidden');
});
$('launcher').addEventListener('click', showChat);

$('chatClose').addEventListener('click', async () => {
  const s = chat.session;
  if (s && s.allowedActions.includes('END')) {
    const ok = await dialog(`<form><h2>关闭会话</h2><p>关闭窗口将结束当前会话，确定吗？</p>
      <div class="actions"><button type="button" data-cancel>取消</button>
      <button class="primary" data-test="confirm-close">结束并关闭</button></div></form>`);
    if (!ok) return;
    await endChat();
  } else if (s && s.allowedActions.includes('LEAVE')) {
    await run(async () => setSession((await gql(`mutation($id: ID!) { leaveQueue(sessionId: $id) { ${SESSION_FIELDS} } }`, { id: s.id })).leaveQueue));
  }
  $('chat').classList.add('closed');
  $('launcher').classList.remove('hidden');
  // A human chat that ended unrated: ask once more on the way out.
  const now = chat.session;
  if (now && now.status === 'ENDED' && now.allowedActions.includes('RATE') && chat.ratingShownFor !== now.id) {
    chat.ratingShownFor = now.id;
    rateChatDialog(now.id);
  }
});

async function openChat() {
  const s = await run(async () => (await gql(`mutation { openChat { ${SESSION_FIELDS} } }`)).openChat);
  if (!s) return;
  if (chat.session?.id !== s.id) {
    chat.unsubscribe?.();
    chat.seqs.clear();
    chat.channels.clear();
    $('messages').querySelectorAll('.msg').forEach((m) => m.remove());
    chat.oldestCursor = null;
    chat.session = s;
    chat.unsubscribe = subscribe(`subscription($id: ID!) { chatEvents(sessionId: $id) {
        kind queuePosition estimatedWaitSeconds channelId channelStatus offerQuestion
        signal { channelId from kind payload }
        message { ${MESSAGE_FIELDS} }
        session { ${SESSION_FIELDS} }
      } }`, { id: s.id }, {
      next: (d) => onChatEvent(d.chatEvents),
      error: (e) => toast(errorText(e), 'error'),
    });
    await loadMessages();
  }
  setSession(s);
}

async function loadMessages(more = false) {
  const s = chat.session;
  const d = await run(() => gql(`query($id: ID!, $before: String) {
      messages(sessionId: $id, last: 20, before: $before) {
        edges { cursor node { ${MESSAGE_FIELDS} } }
        pageInfo { hasPreviousPage startCursor }
      } }`, { id: s.id, before: more ? chat.oldestCursor : null }));
  if (!d) return;
  const conn = d.messages;
  const nodes = conn.edges.map((e) => e.node);
  if (more) {
    const box = $('messages');
    const anchor = box.querySelector('.msg');
    const h = box.scrollHeight;
    for (const m of nodes) if (!chat.seqs.has(m.seq)) { chat.seqs.add(m.seq); box.insertBefore(renderMessage(m), anchor); }
    box.scrollTop = box.scrollHeight - h;
  } else {
    for (const m of nodes) appendMessage(m);
    scrollDown();
  }
  chat.oldestCursor = conn.pageInfo.startCursor || chat.oldestCursor;
  $('loadMore').classList.toggle('hidden', !conn.pageInfo.hasPreviousPage);
}
$('loadMore').addEventListener('click', () => loadMessages(true));

function scrollDown() {
  const box = $('messages');
  box.scrollTop = box.scrollHeight;
}

function setSession(s) {
  const prev = chat.session;
  chat.session = s;
  const acts = s.allowedActions;
  const human = s.agent && ['ACTIVE', 'ENDED'].includes(s.status);
  $('chatTitle').textContent = human ? `人工客服 · ${s.agent.displayName}` : (s.status === 'QUEUED' ? '人工客服' : `智能客服 · ${bot.name}`);
  $('chatSub').textContent = STATUS_TEXT[s.status] || s.status;
  $('chat').dataset.status = s.status;
  $('humanBtn').classList.toggle('hidden', !acts.includes('REQUEST_HUMAN'));
  $('endBtn').classList.toggle('hidden', !acts.includes('END'));
  $('assistBtn').classList.toggle('hidden', s.status !== 'ACTIVE');
  const open = ['BOT', 'QUEUED', 'ACTIVE'].includes(s.status);
  $('composer').querySelector('button').disabled = !open;
  $('input').disabled = !open;
  ['emojiBtn', 'imageBtn', 'fileBtn'].forEach((id) => { $(id).disabled = !open; });
  if (s.status === 'QUEUED') {
    showQueue(s.queuePosition, s.estimatedWaitSeconds);
  } else {
    $('queueBar').classList.add('hidden');
  }
  $('leaveQueue').classList.toggle('hidden', !acts.includes('LEAVE'));
  if (s.status !== 'QUEUED') $('offerBar').classList.add('hidden');
  if (s.status === 'ENDED' && acts.includes('RATE') && chat.ratingShownFor !== s.id && prev) {
    chat.ratingShownFor = s.id;
    rateChatDialog(s.id);
  }
  if (!open) stopMedia();
}

function showQueue(pos, wait) {
  $('queueBar').classList.remove('hidden');
  const mins = wait != null ? Math.max(1, Math.round(wait / 60)) : null;
  $('queueText').textContent = `正在排队：您前面还有 ${Math.max(0, (pos ?? 1) - 1)} 人（第 ${pos ?? '-'} 位）` +
    (mins != null ? `，预计等待约 ${mins} 分钟` : '');
  $('queueText').dataset.position = pos ?? '';
}

function onChatEvent(ev) {
  if (!ev) return;
  switch (ev.kind) {
    case 'MESSAGE':
      if (ev.message) {
        appendMessage(ev.message);
        if (chat.minimized) $('badgeChat').textContent = String(Number($('badgeChat').textContent || 0) + 1);
      }
      break;
    case 'QUEUE_POSITION':
      if (chat.session?.status === 'QUEUED') showQueue(ev.queuePosition, ev.estimatedWaitSeconds);
      break;
    case 'QUEUE_OFFER':
      $('offerBar').classList.remove('hidden');
      $('offerText').textContent = '等待时间较长，您可以继续等待，或在线留言、预约。';
      $('offerWait').classList.remove('hidden');
      chat.offerQuestion = ev.offerQuestion || '';
      chat.offerCategory = chat.session?.skillGroup || '';
      break;
    case 'REMOTE_ASSIST':
    case 'CALL':
      onChannel(ev.kind, ev.channelId, ev.channelStatus).catch((e) => console.warn('channel', e));
      break;
    case 'SIGNAL':
      if (ev.signal) onSignal(ev.signal);
      break;
    default:
      break;
  }
  if (ev.session && ev.kind !== 'MESSAGE') setSession(ev.session);
  else if (ev.session && ev.session.status !== chat.session?.status) setSession(ev.session);
}

// A bot reply names the FAQ it answered with and the related questions it offered: the
// person can vote, favourite and follow them.
function enrichBotAnswer(el, m) {
  const bubble = el.querySelector('.bubble');
  const related = m.suggestions || [];
  let anchor = bubble;
  if (m.faq) {
    const faqId = m.faq.id;
    const tools = document.createElement('div');
    tools.className = 'answer-tools';
    tools.innerHTML = `<button class="small" data-vote="1" data-test="answer-useful">👍 有用</button>
      <button class="small" data-vote="0" data-test="answer-useless">👎 无用</button>
      <button class="small" data-fav data-test="answer-favorite">☆ 收藏</button>`;
    tools.addEventListener('click', (ev) => {
      const b = ev.target.closest('button');
      if (!b) return;
      if (b.dataset.vote) vote(tools, faqId, b.dataset.vote === '1');
      else if (b.dataset.fav !== undefined) favorite(b, faqId);
    });
    bubble.after(tools);
    anchor = tools;
  }
  if (!m.faq && related.length) {
    // Unsure: the reply lists the questions ("1. …"); make each one clickable.
    bubble.innerHTML = esc(m.text || '').replace(/^(\d+)\. (.+)$/gm,
      (_, n, q) => `${n}. <span class="q" data-q="${q}" data-test="related-question">${q}</span>`);
  } else if (related.length) {
    const r = document.createElement('div');
    r.className = 'related';
    r.dataset.test = 'related-questions';
    r.innerHTML = `<span class="muted">相关问题：</span>${related.slice(0, 3).map((f) =>
      `<span class="q" data-q="${esc(f.question)}" data-test="related-question">${esc(f.question)}</span>`).join('')}`;
    anchor.after(r);
  }
}

async function vote(tools, faqId, useful) {
  const f = await run(async () => (await gql(`mutation($i: RateAnswerInput!) { rateAnswer(input: $i) { id usefulCount uselessCount } }`,
    { i: { faqId, useful, sessionId: chat.session?.id } })).rateAnswer);
  if (!f) return;
  tools.querySelectorAll('[data-vote]').forEach((b) => b.classList.toggle('active', (b.dataset.vote === '1') === useful));
  tools.dataset.voted = useful ? 'useful' : 'useless';
  toast(useful ? '感谢您的反馈：有用' : '感谢您的反馈，我们会改进答案', 'ok');
}

async function favorite(btn, faqId) {
  const on = btn.dataset.on === '1';
  const ok = await run(() => gql(on ? 'mutation($id: ID!) { removeFavorite(faqId: $id) { id } }'
    : 'mutation($id: ID!) { addFavorite(faqId: $id) { id } }', { id: faqId }));
  if (!ok) return;
  btn.dataset.on = on ? '0' : '1';
  btn.textContent = on ? '☆ 收藏' : '★ 已收藏';
  btn.classList.toggle('active', !on);
  if (pc.tab === 'favorites') renderTab();
}

function renderMessage(m) {
  const el = document.createElement('div');
  const mine = m.sender?.id === me.id;
  const role = (m.senderRole || '').toUpperCase();
  const system = m.kind === 'SYSTEM';
  el.className = `msg ${mine ? 'mine' : ''} ${system ? 'system' : ''}`;
  el.dataset.test = 'message';
  el.dataset.kind = m.kind;
  el.dataset.seq = m.seq;
  const who = mine ? '我' : role === 'BOT' ? (m.sender?.displayName || bot.name) : (m.sender?.displayName || '客服');
  let body;
  if (m.kind === 'IMAGE' && m.attachment) {
    body = `<a href="${esc(m.attachment.url)}" target="_blank" rel="noopener"><img src="${esc(m.attachment.url)}" alt="${esc(m.attachment.fileName)}" data-test="message-image"></a>`;
  } else if (m.kind === 'FILE' && m.attachment) {
    body = `📎 <a href="${esc(m.attachment.url)}" download="${esc(m.attachment.fileName)}" data-test="message-file">${esc(m.attachment.fileName)}</a> <span class="muted small">${Math.ceil(m.attachment.size / 1024)} KB</span>`;
  } else if (m.kind === 'EMOJI') {
    body = `<span class="emoji">${esc(m.text)}</span>`;
  } else {
    body = esc(m.text);
  }
  el.innerHTML = system ? `<div class="bubble">${body}</div>`
    : `<div class="meta">${esc(who)} · ${fmtHm(m.createdAt)}</div><div class="bubble" data-test="message-text">${body}</div>`;
  return el;
}

function appendMessage(m) {
  if (chat.seqs.has(m.seq)) return;
  chat.seqs.add(m.seq);
  const el = renderMessage(m);
  $('messages').append(el);
  // An image grows the list when it has loaded: keep the newest message in view.
  el.querySelectorAll('img').forEach((img) => img.addEventListener('load', scrollDown, { once: true }));
  if ((m.senderRole || '').toUpperCase() === 'BOT' && m.kind === 'TEXT') enrichBotAnswer(el, m);
  scrollDown();
}

async function send(kind, text, attachmentId) {
  const s = chat.session;
  if (!s) return null;
  const m = await run(async () => (await gql(`mutation($i: SendMessageInput!) { sendMessage(input: $i) { ${MESSAGE_FIELDS} } }`, {
    i: { sessionId: s.id, kind, text, attachmentId, clientMessageId: crypto.randomUUID() },
  })).sendMessage);
  if (m) appendMessage(m);
  return m;
}

const HUMAN_WORDS = /转人工|人工客服|找真人|我要真人/;

/** Asks a question: in a BOT session the virtual agent answers; 转人工 hands over. */
async function ask(text) {
  if (!chat.session || !['BOT', 'QUEUED', 'ACTIVE'].includes(chat.session.status)) await openChat();
  if (!chat.session) return;
  chat.lastQuestion = text;
  const wasBot = chat.session.status === 'BOT';
  const m = await send('TEXT', text);
  if (m && wasBot && HUMAN_WORDS.test(text)) {
    // The server hands over on these words; when it could not, offer the alternatives.
    const s = await run(async () => (await gql(`query($id: ID!) { chatSession(id: $id) { ${SESSION_FIELDS} } }`, { id: chat.session.id })).chatSession);
    if (s) setSession(s);
    if (s && s.status === 'BOT') offerAlternatives();
  }
}

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text) return;
  $('input').value = '';
  ask(text);
});

// `offer`: the refusal's `extensions.offer` (a leave message pre-filled from the chat, and
// `nextOpenAt`); a 转人工 typed in the chat is refused by the bot, without one.
async function offerAlternatives(code, offer) {
  let next = offer?.nextOpenAt;
  if (!offer) {
    const hours = await gql('{ serviceHours { openNow nextOpenAt } }').catch(() => null);
    next = hours?.serviceHours?.nextOpenAt;
  }
  const when = next ? `，下次服务时间：${fmtTime(next)}` : '';
  chat.offerQuestion = offer?.leaveMessage?.content || chat.lastQuestion;
  chat.offerCategory = offer?.leaveMessage?.category || '';
  const why = code === 'NO_AGENT' ? '暂无坐席在线' : '当前不在人工服务时间';
  $('offerBar').classList.remove('hidden');
  $('offerText').textContent = `${why}${when}。您可以在线留言或预约。`;
  $('offerWait').classList.add('hidden');
}

$('humanBtn').addEventListener('click', async () => {
  const s = chat.session;
  try {
    const r = (await gql(`mutation($i: RequestHumanInput!) { requestHuman(input: $i) { ${SESSION_FIELDS} } }`, { i: { sessionId: s.id } })).requestHuman;
    setSession(r);
  } catch (e) {
    if (e instanceof GqlError && ['OFF_HOURS', 'NO_AGENT'].includes(e.code)) {
      offerAlternatives(e.code, e.errors?.[0]?.extensions?.offer);
    } else toast(errorText(e), 'error');
  }
});

$('leaveQueue').addEventListener('click', async () => {
  const s = await run(async () => (await gql(`mutation($id: ID!) { leaveQueue(sessionId: $id) { ${SESSION_FIELDS} } }`, { id: chat.session.id })).leaveQueue);
  if (s) setSession(s);
});

async function endChat() {
  const s = await run(async () => (await gql(`mutation($id: ID!) { endChat(sessionId: $id) { ${SESSION_FIELDS} } }`, { id: chat.session.id })).endChat);
  if (s) setSession(s);
}
$('endBtn').addEventListener('click', endChat);

$('offerLeave').addEventListener('click', () => leaveMessageDialog(chat.offerQuestion || chat.lastQuestion, chat.offerCategory));
$('offerBook').addEventListener('click', bookDialog);
$('offerWait').addEventListener('click', () => $('offerBar').classList.add('hidden'));
$('bookBtn').addEventListener('click', bookDialog);
$('leaveMsgBtn').addEventListener('click', () => leaveMessageDialog(chat.lastQuestion));

// Emoji, images and files.
const EMOJI = ['😀', '😂', '😊', '😍', '🤔', '😢', '😡', '👍', '👎', '👏', '🙏', '💪', '🎉', '❤️', '✅', '❓'];
$('emojiPanel').innerHTML = EMOJI.map((e) => `<button type="button" data-emoji="${e}" data-test="emoji">${e}</button>`).join('');
$('emojiBtn').addEventListener('click', () => $('emojiPanel').classList.toggle('hidden'));
$('emojiPanel').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-emoji]');
  if (!b) return;
  $('emojiPanel').classList.add('hidden');
  send('EMOJI', b.dataset.emoji);
});
$('imageBtn').addEventListener('click', () => $('imageInput').click());
$('fileBtn').addEventListener('click', () => $('fileInput').click());
async function sendFile(input, kind) {
  const file = input.files?.[0];
  input.value = '';
  if (!file || !chat.session) return;
  const a = await run(() => upload(file, chat.session.id));
  if (a) await send(kind, null, a.id);
}
$('imageInput').addEventListener('change', () => sendFile($('imageInput'), 'IMAGE'));
$('fileInput').addEventListener('change', () => sendFile($('fileInput'), 'FILE'));

// ---- rating, offline message, booking dialogs --------------------------------------------

function starsHtml(name) {
  return `<div class="stars" data-stars="${name}">${[1, 2, 3, 4, 5].map((n) =>
    `<button type="button" data-n="${n}" data-test="star-${n}">★</button>`).join('')}
    <input type="hidden" name="${name}" value="5"></div>`;
}
function wireStars(d) {
  d.querySelectorAll('.stars').forEach((box) => {
    const paint = (n) => box.querySelectorAll('button').forEach((b) => b.classList.toggle('on', Number(b.dataset.n) <= n));
    paint(5);
    box.addEventListener('click', (ev) => {
      const b = ev.target.closest('button');
      if (!b) return;
      box.querySelector('input').value = b.dataset.n;
      paint(Number(b.dataset.n));
    });
  });
}

async function rateChatDialog(sessionId) {
  const v = await dialog(`<form data-test="rate-chat-dialog"><h2>服务评价</h2>
    <p class="muted">本次人工服务已结束，请对服务进行评价。</p>
    <label>问题是否已解决</label>
    <div class="row"><label class="row"><input type="radio" name="resolved" value="1" checked data-test="rate-resolved"> 已解决</label>
    <label class="row"><input type="radio" name="resolved" value="0" data-test="rate-unresolved"> 未解决</label></div>
    <label>满意度</label>${starsHtml('satisfaction')}
    <label>评价内容（可选）</label><textarea name="comment" rows="3" maxlength="500" data-test="rate-comment"></textarea>
    <div class="actions"><button type="button" data-cancel data-test="rate-later">稍后评价</button>
    <button class="primary" data-test="rate-submit">提交评价</button></div></form>`, { onOpen: wireStars });
  if (!v) return;
  const s = await run(async () => (await gql(`mutation($i: RateChatInput!) { rateChat(input: $i) { ${SESSION_FIELDS} } }`, {
    i: { sessionId, resolved: v.resolved === '1', satisfaction: Number(v.satisfaction), comment: v.comment || null },
  })).rateChat);
  if (s) {
    toast('感谢您的评价', 'ok');
    if (chat.session?.id === s.id) setSession(s);
    refreshCounts();
    if (pc.tab === 'todos') renderTab();
  }
}

async function leaveMessageDialog(question, category = '') {
  const cats = await gql('{ workOrderCategories }').catch(() => ({ workOrderCategories: ['其他'] }));
  const v = await dialog(`<form data-test="leave-message-dialog"><h2>在线留言</h2>
    <p class="muted small">工作人员将在工作时间内回复，回复会推送到“我的留言”。</p>
    <label>业务类别</label><select name="category" data-test="leave-category">${cats.workOrderCategories.map((c) => `<option${c === category ? ' selected' : ''}>${esc(c)}</option>`).join('')}</select>
    <label>留言内容</label><textarea name="content" rows="4" required maxlength="2000" data-test="leave-content">${esc(question || '')}</textarea>
    <label>联系方式（可选）</label><input name="contact" maxlength="100" data-test="leave-contact">
    <div class="actions"><button type="button" data-cancel>取消</button><button class="primary" data-test="leave-submit">提交留言</button></div></form>`);
  if (!v) return;
  const r = await run(() => gql(`mutation($i: LeaveMessageInput!) { leaveMessage(input: $i) { id status } }`, {
    i: { category: v.category, content: v.content, contact: v.contact || null, sourceSessionId: chat.session?.id ?? null },
  }));
  if (r) {
    toast('留言已提交', 'ok');
    $('offerBar').classList.add('hidden');
    if (pc.tab === 'leave') renderTab();
  }
}

function shanghaiDate(offsetDays = 0) {
  const d = new Date(Date.now() + offsetDays * 86400000);
  return d.toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
}

async function bookDialog() {
  const d = await run(() => gql('{ serviceTypes { code name methods slotMinutes bookableDays } }'));
  if (!d) return;
  const types = d.serviceTypes;
  if (!types.length) { toast('暂无可预约的业务', 'error'); return; }
  let chosen = null;
  const v = await dialog(`<form data-test="book-dialog"><h2>预约服务</h2>
    <label>业务类型</label><select name="serviceType" id="bkType" data-test="book-type">${types.map((t) => `<option value="${esc(t.code)}">${esc(t.name)}</option>`).join('')}</select>
    <label>方式</label><select name="method" id="bkMethod" data-test="book-method"></select>
    <label>日期</label><input type="date" name="date" id="bkDate" value="${shanghaiDate(1)}" min="${shanghaiDate(0)}" data-test="book-date">
    <div class="slots" id="bkSlots" data-test="book-slots"></div>
    <label>备注（可选）</label><input name="note" maxlength="500" data-test="book-note">
    <p class="small muted" id="bkChosen"></p>
    <div class="actions"><button type="button" data-cancel>取消</button><button class="primary" id="bkSubmit" disabled data-test="book-submit">确认预约</button></div></form>`, {
    onOpen: (dlg) => {
      const type = dlg.querySelector('#bkType');
      const method = dlg.querySelector('#bkMethod');
      const date = dlg.querySelector('#bkDate');
      const slots = dlg.querySelector('#bkSlots');
      const fillMethods = () => {
        const t = types.find((x) => x.code === type.value);
        method.innerHTML = (t?.methods || []).map((m) => `<option value="${m}">${METHOD_TEXT[m] || m}</option>`).join('');
      };
      const loadSlots = async () => {
        chosen = null;
        dlg.querySelector('#bkSubmit').disabled = true;
        slots.innerHTML = '<span class="muted">加载中…</span>';
        const from = new Date(`${date.value}T00:00:00+08:00`);
        const to = new Date(from.getTime() + 86400000);
        try {
          const r = await gql(`query($i: AvailableSlotsInput!) { availableSlots(input: $i) { start end remaining } }`, {
            i: { serviceType: type.value, method: method.value || null, from: from.toISOString(), to: to.toISOString() },
          });
          slots.innerHTML = r.availableSlots.map((s) => `<button type="button" class="small" data-start="${esc(s.start)}" ${s.remaining > 0 ? '' : 'disabled'} data-test="slot">
            ${fmtHm(s.start)}–${fmtHm(s.end)}（余 ${s.remaining}）</button>`).join('') || '<span class="muted">当天没有可预约的时段</span>';
        } catch (e) {
          slots.innerHTML = `<span class="muted">${esc(errorText(e))}</span>`;
        }
      };
      slots.addEventListener('click', (ev) => {
        const b = ev.target.closest('[data-start]');
        if (!b) return;
        chosen = b.dataset.start;
        slots.querySelectorAll('button').forEach((x) => x.classList.toggle('active', x === b));
        dlg.querySelector('#bkChosen').textContent = `已选：${fmtTime(chosen)}`;
        dlg.querySelector('#bkSubmit').disabled = false;
      });
      type.addEventListener('change', () => { fillMethods(); loadSlots(); });
      method.addEventListener('change', loadSlots);
      date.addEventListener('change', loadSlots);
      fillMethods();
      loadSlots();
    },
  });
  if (!v || !chosen) return;
  const b = await run(() => gql(`mutation($i: BookAppointmentInput!) { bookAppointment(input: $i) { id status start } }`, {
    i: { serviceType: v.serviceType, method: v.method, start: chosen, note: v.note || null },
  }));
  if (b) {
    toast(`预约成功：${fmtTime(b.bookAppointment.start)}`, 'ok');
    $('offerBar').classList.add('hidden');
    if (pc.tab === 'bookings') renderTab();
  }
}

// ---- remote assistance and calls (WebRTC, signalled through the API) -----------------------

/** What the taxpayer may do with a channel now, from the server (`Channel.allowedActions`). */
async function channelActions(id) {
  const sid = chat.session?.id;
  if (!sid) return [];
  const d = await gql(`query($id: ID!) { chatSession(id: $id) { channels { id allowedActions } } }`, { id: sid })
    .catch(() => null);
  return d?.chatSession?.channels?.find((c) => c.id === id)?.allowedActions || [];
}

async function onChannel(kind, id, status) {
  if (!id) return;
  chat.channels.set(id, { kind, status });
  const bar = $('channelBar');
  const label = kind === 'CALL' ? '音视频通话' : '远程协助';
  const final = ['DECLINED', 'CANCELLED', 'EXPIRED', 'ENDED'].includes(status);
  const actions = final ? [] : await channelActions(id);
  // A newer event for this channel arrived while asking: it draws the bar.
  if (chat.channels.get(id)?.status !== status) return;
  bar.classList.remove('hidden');
  bar.dataset.channel = id;
  bar.dataset.status = status;
  const button = (action, html) => (actions.includes(action) ? html : '');
  if (kind === 'CALL' && status === 'INVITED') {
    bar.innerHTML = `<span>客服邀请您进行音视频通话</span>
      ${button('ACCEPT', '<button class="small primary" data-call="1" data-test="call-accept">同意</button>')}
      ${button('DECLINE', '<button class="small" data-call="0" data-test="call-decline">拒绝</button>')}`;
    bar.onclick = async (ev) => {
      const b = ev.target.closest('[data-call]');
      if (!b) return;
      const accept = b.dataset.call === '1';
      const r = await run(() => gql('mutation($i: RespondCallInput!) { respondCall(input: $i) { id status media } }', { i: { id, accept } }));
      if (r && accept) startMedia(id, r.respondCall.media === 'VIDEO' ? 'camera' : 'audio');
    };
  } else if (status === 'ACTIVE') {
    bar.innerHTML = `<span>${label}进行中</span>${button('END', `<button class="small danger" data-end data-test="channel-end">结束${label}</button>`)}`;
    bar.onclick = async (ev) => {
      if (!ev.target.closest('[data-end]')) return;
      await run(() => gql(kind === 'CALL' ? 'mutation($id: ID!) { endCall(id: $id) { id } }' : 'mutation($id: ID!) { endRemoteAssist(id: $id) { id } }', { id }));
      stopMedia();
    };
    if (kind === 'REMOTE_ASSIST' && !chat.pc) startMedia(id, 'screen');
  } else if (status === 'REQUESTED') {
    bar.innerHTML = `<span>已发起远程协助请求，等待客服同意…</span>${button('CANCEL', '<button class="small" data-end data-test="channel-cancel">取消</button>')}`;
    bar.onclick = async (ev) => {
      if (!ev.target.closest('[data-end]')) return;
      await run(() => gql('mutation($id: ID!) { endRemoteAssist(id: $id) { id } }', { id }));
    };
  } else {
    const text = { DECLINED: '已拒绝', CANCELLED: '已取消', EXPIRED: '已过期', ENDED: '已结束' }[status] || status;
    bar.innerHTML = `<span>${label}${text}</span>`;
    bar.onclick = null;
    stopMedia();
    setTimeout(() => { if (bar.dataset.channel === id) bar.classList.add('hidden'); }, 4000);
  }
}

$('assistBtn').addEventListener('click', async () => {
  const r = await run(() => gql('mutation($id: ID!) { requestRemoteAssist(sessionId: $id) { id status } }', { id: chat.session.id }));
  if (r) onChannel('REMOTE_ASSIST', r.requestRemoteAssist.id, r.requestRemoteAssist.status).catch((e) => console.warn('channel', e));
});

/** The taxpayer sends the media (screen or camera/microphone) and makes the offer. */
async function startMedia(channelId, what) {
  if (!window.RTCPeerConnection || !navigator.mediaDevices) {
    toast('当前浏览器不支持音视频功能', 'error');
    return;
  }
  try {
    const stream = what === 'screen'
      ? await navigator.mediaDevices.getDisplayMedia({ video: true })
      : await navigator.mediaDevices.getUserMedia({ audio: true, video: what === 'camera' });
    chat.stream = stream;
    const pc = new RTCPeerConnection();
    chat.pc = pc;
    chat.pcChannel = channelId;
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    pc.ontrack = (ev) => { $('remoteVideo').srcObject = ev.streams[0]; };
    // Candidates wait for the agent's answer: by then the agent has applied the offer, so
    // no candidate reaches them before the description it belongs to.
    chat.iceHeld = [];
    pc.onicecandidate = (ev) => {
      if (!ev.candidate) return;
      const payload = JSON.stringify(ev.candidate);
      if (chat.iceHeld) chat.iceHeld.push(payload);
      else signal(channelId, 'ICE', payload);
    };
    $('localVideo').srcObject = stream;
    $('media').classList.remove('hidden');
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await signal(channelId, 'OFFER', JSON.stringify(offer));
  } catch {
    toast('无法获取屏幕或摄像头，请检查浏览器权限', 'error');
    stopMedia();
  }
}

function signal(channelId, kind, payload) {
  return gql('mutation($i: SendSignalInput!) { sendSignal(input: $i) }', { i: { channelId, kind, payload } }).catch(() => null);
}

async function onSignal(sig) {
  const pc = chat.pc;
  if (!pc || sig.from === me.id || sig.channelId !== chat.pcChannel) return;
  try {
    const data = JSON.parse(sig.payload);
    if (sig.kind === 'ANSWER') {
      await pc.setRemoteDescription(data);
      const held = chat.iceHeld || [];
      chat.iceHeld = null;
      for (const payload of held) await signal(sig.channelId, 'ICE', payload);
    }
    else if (sig.kind === 'ICE') await pc.addIceCandidate(data);
  } catch { /* a stale or malformed signal: ignore */ }
}

function stopMedia() {
  chat.stream?.getTracks().forEach((t) => t.stop());
  chat.stream = null;
  chat.pc?.close();
  chat.pc = null;
  $('media').classList.add('hidden');
}

// ---- personal centre --------------------------------------------------------------------

const pc = { tab: 'todos', bookingOrigin: 'MINE', openOrder: null };

$('pcTabs').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-tab]');
  if (!b) return;
  pc.tab = b.dataset.tab;
  renderTab();
});

async function refreshCounts() {
  const d = await gql('{ unreadCounts { notifications todos leaveMessageReplies } }').catch(() => null);
  if (!d) return;
  const set = (id, n) => { $(id).textContent = n ? String(n) : ''; $(id).dataset.count = String(n); };
  set('badgeTodos', d.unreadCounts.todos);
  set('badgeMessages', d.unreadCounts.notifications);
  set('badgeLeave', d.unreadCounts.leaveMessageReplies);
}

async function renderTab() {
  document.querySelectorAll('#pcTabs [data-tab]').forEach((b) => b.classList.toggle('active', b.dataset.tab === pc.tab));
  const body = $('pcBody');
  const render = { todos: renderTodos, messages: renderNotifications, favorites: renderFavorites, orders: renderOrders, leave: renderLeave, bookings: renderBookings }[pc.tab];
  try {
    await render(body);
  } catch (e) {
    body.innerHTML = `<div class="empty">${esc(errorText(e))}</div>`;
  }
}

const TODO_TEXT = { ANSWER_INVITATION: '答复邀请', RATE_WORK_ORDER: '评价工单', RATE_CHAT: '评价服务', BOOKING_SOON: '预约将开始', READ_REPLY: '查看回复' };

async function renderTodos(body) {
  const d = await gql('{ myTodos { kind title targetId dueAt } }');
  body.innerHTML = d.myTodos.length ? `<ul class="list" data-test="todo-list">${d.myTodos.map((t) => `<li data-test="todo" data-kind="${t.kind}" data-target="${esc(t.targetId)}">
      <div class="item-head"><span class="tag warn">${TODO_TEXT[t.kind] || t.kind}</span><span class="title">${esc(t.title)}</span>
      ${t.dueAt ? `<span class="muted small">截止 ${fmtTime(t.dueAt)}</span>` : ''}<span class="grow"></span>
      <button class="small primary" data-todo="${t.kind}" data-id="${esc(t.targetId)}" data-test="todo-go">去处理</button></div></li>`).join('')}</ul>`
    : '<div class="empty" data-test="todo-empty">暂无待办</div>';
  body.onclick = (ev) => {
    const b = ev.target.closest('[data-todo]');
    if (!b) return;
    const { todo, id } = b.dataset;
    if (todo === 'RATE_CHAT') rateChatDialog(id);
    else if (todo === 'RATE_WORK_ORDER') { pc.tab = 'orders'; pc.openOrder = id; renderTab(); }
    else if (todo === 'ANSWER_INVITATION' || todo === 'BOOKING_SOON') { pc.tab = 'bookings'; pc.bookingOrigin = todo === 'ANSWER_INVITATION' ? 'BUREAU_INVITED' : 'MINE'; renderTab(); }
    else if (todo === 'READ_REPLY') { pc.tab = 'leave'; renderTab(); }
  };
}

async function renderNotifications(body) {
  const d = await gql('{ myNotifications(first: 50) { edges { node { id kind title body read createdAt } } } }');
  const list = d.myNotifications.edges.map((e) => e.node);
  body.innerHTML = `<div class="row end"><button class="small" id="readAll" data-test="mark-all-read">全部标为已读</button></div>` +
    (list.length ? `<ul class="list" data-test="notification-list">${list.map((n) => `<li data-test="notification" class="${n.read ? '' : 'unread'}" data-id="${esc(n.id)}">
      <div class="item-head">${n.read ? '' : '<span class="badge">新</span>'}<span class="title">${esc(n.title)}</span><span class="grow"></span><span class="muted small">${fmtTime(n.createdAt)}</span></div>
      <div>${esc(n.body)}</div></li>`).join('')}</ul>` : '<div class="empty">暂无消息</div>');
  body.onclick = async (ev) => {
    if (ev.target.closest('#readAll')) {
      await run(() => gql('mutation { markAllNotificationsRead }'));
      refreshCounts();
      renderTab();
      return;
    }
    const li = ev.target.closest('li.unread[data-id]');
    if (li) {
      await run(() => gql('mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) { id } }', { ids: [li.dataset.id] }));
      li.classList.remove('unread');
      li.querySelector('.badge')?.remove();
      refreshCounts();
    }
  };
}

async function renderFavorites(body) {
  const d = await gql('{ myFavorites(first: 50) { edges { node { id question answer } } } }');
  const list = d.myFavorites.edges.map((e) => e.node);
  body.innerHTML = list.length ? `<ul class="list" data-test="favorite-list">${list.map((f) => `<li data-test="favorite" data-id="${esc(f.id)}">
      <div class="item-head"><span class="title q" data-q="${esc(f.question)}">${esc(f.question)}</span><span class="grow"></span>
      <button class="small" data-unfav="${esc(f.id)}" data-test="unfavorite">取消收藏</button></div>
      <div class="muted small">${esc(f.answer.slice(0, 120))}${f.answer.length > 120 ? '…' : ''}</div></li>`).join('')}</ul>`
    : '<div class="empty">暂无收藏</div>';
  body.onclick = async (ev) => {
    const b = ev.target.closest('[data-unfav]');
    if (!b) return;
    if (await run(() => gql('mutation($id: ID!) { removeFavorite(faqId: $id) { id } }', { id: b.dataset.unfav }))) renderTab();
  };
}

const ORDER_FIELDS = `id number title description category status priority urgeCount lastUrgedAt deadline resolution
  handler { id displayName } rating { score comment } createdAt allowedActions
  history { at event fromStatus toStatus note actor { id displayName } }`;
const ORDER_ACTION = { URGE: ['催办', 'urge'], TERMINATE: ['终止', 'terminate'], RATE: ['评价', 'rate'] };
const EVENT_TEXT = { CREATE: '提交', DISPATCH: '派单', ACCEPT: '受理', PROGRESS: '处理进展', COMPLETE: '办结', URGE: '催办', TERMINATE: '终止', RATE: '评价', OVERDUE: '超期' };

async function renderOrders(body) {
  const d = await gql(`{ myWorkOrders(first: 50) { edges { node { ${ORDER_FIELDS} } } } }`);
  const list = d.myWorkOrders.edges.map((e) => e.node);
  body.innerHTML = `<div class="row end"><button class="small primary" id="newOrder" data-test="new-order">新建工单</button></div>` +
    (list.length ? `<ul class="list" data-test="order-list">${list.map((o) => `<li data-test="order" data-id="${esc(o.id)}" data-number="${esc(o.number)}">
      <div class="item-head"><span class="muted">${esc(o.number)}</span><span class="title">${esc(o.title)}</span>${statusTag(o.status)}
        <span class="tag">${esc(o.category)}</span>${o.priority !== 'NORMAL' ? `<span class="tag danger">${PRIORITY_TEXT[o.priority]}</span>` : ''}
        ${o.urgeCount ? `<span class="muted small" data-test="urge-count">已催办 ${o.urgeCount} 次</span>` : ''}</div>
      <div class="item-actions">
        <button class="small" data-detail="${esc(o.id)}" data-test="order-detail">${pc.openOrder === o.id ? '收起' : '详情'}</button>
        ${o.allowedActions.filter((a) => ORDER_ACTION[a]).map((a) => `<button class="small ${a === 'TERMINATE' ? 'danger' : ''}" data-act="${a}" data-id="${esc(o.id)}" data-test="order-${ORDER_ACTION[a][1]}">${ORDER_ACTION[a][0]}</button>`).join('')}
      </div>
      ${pc.openOrder === o.id ? `<div data-test="order-details" class="small">
        <div>${esc(o.description)}</div>
        <div class="muted">提交时间 ${fmtTime(o.createdAt)}${o.deadline ? ` · 办理期限 ${fmtTime(o.deadline)}` : ''}${o.handler ? ` · 承办人 ${esc(o.handler.displayName)}` : ''}</div>
        ${o.resolution ? `<div class="reply">办理结果：${esc(o.resolution)}</div>` : ''}
        ${o.rating ? `<div class="reply">我的评价：${'★'.repeat(o.rating.score)} ${esc(o.rating.comment || '')}</div>` : ''}
        <ol class="history" data-test="order-history">${o.history.map((h) => `<li>${fmtTime(h.at)} ${esc(EVENT_TEXT[h.event] || h.event)}${h.note ? `：${esc(h.note)}` : ''}</li>`).join('')}</ol>
      </div>` : ''}</li>`).join('')}</ul>` : '<div class="empty">暂无工单</div>');
  body.onclick = async (ev) => {
    if (ev.target.closest('#newOrder')) return newOrderDialog();
    const det = ev.target.closest('[data-detail]');
    if (det) {
      pc.openOrder = pc.openOrder === det.dataset.detail ? null : det.dataset.detail;
      return renderTab();
    }
    const b = ev.target.closest('[data-act]');
    if (!b) return;
    const id = b.dataset.id;
    let done;
    if (b.dataset.act === 'URGE') {
      const v = await dialog(`<form data-test="urge-dialog"><h2>催办</h2><label>催办原因（可选）</label>
        <input name="reason" maxlength="500" data-test="urge-reason"><div class="actions"><button type="button" data-cancel>取消</button>
        <button class="primary" data-test="urge-submit">确认催办</button></div></form>`);
      if (!v) return;
      done = await run(() => gql('mutation($i: UrgeWorkOrderInput!) { urgeWorkOrder(input: $i) { id } }', { i: { id, reason: v.reason || null } }));
      if (done) toast('已催办，承办人员将尽快处理', 'ok');
    } else if (b.dataset.act === 'TERMINATE') {
      const v = await dialog(`<form data-test="terminate-dialog"><h2>终止工单</h2><label>终止原因（可选）</label>
        <input name="reason" maxlength="500" data-test="terminate-reason"><div class="actions"><button type="button" data-cancel>取消</button>
        <button class="primary danger" data-test="terminate-submit">确认终止</button></div></form>`);
      if (!v) return;
      done = await run(() => gql('mutation($i: TerminateWorkOrderInput!) { terminateWorkOrder(input: $i) { id } }', { i: { id, reason: v.reason || null } }));
    } else if (b.dataset.act === 'RATE') {
      const v = await dialog(`<form data-test="rate-order-dialog"><h2>评价工单</h2><label>满意度</label>${starsHtml('score')}
        <label>评价内容（可选）</label><textarea name="comment" rows="3" maxlength="500"></textarea>
        <div class="actions"><button type="button" data-cancel>取消</button><button class="primary" data-test="rate-order-submit">提交评价</button></div></form>`, { onOpen: wireStars });
      if (!v) return;
      done = await run(() => gql('mutation($i: RateWorkOrderInput!) { rateWorkOrder(input: $i) { id } }', { i: { id, score: Number(v.score), comment: v.comment || null } }));
    }
    if (done) { refreshCounts(); renderTab(); }
  };
}

async function newOrderDialog() {
  const cats = await gql('{ workOrderCategories }').catch(() => ({ workOrderCategories: ['其他'] }));
  const v = await dialog(`<form data-test="new-order-dialog"><h2>新建工单</h2>
    <label>标题</label><input name="title" required maxlength="100" data-test="order-title">
    <label>业务类别</label><select name="category">${cats.workOrderCategories.map((c) => `<option>${esc(c)}</option>`).join('')}</select>
    <label>问题描述</label><textarea name="description" rows="4" required maxlength="4000" data-test="order-description"></textarea>
    <div class="actions"><button type="button" data-cancel>取消</button><button class="primary" data-test="order-submit">提交</button></div></form>`);
  if (!v) return;
  if (await run(() => gql('mutation($i: CreateWorkOrderInput!) { createWorkOrder(input: $i) { id } }', { i: v }))) {
    toast('工单已提交', 'ok');
    renderTab();
  }
}

async function renderLeave(body) {
  const d = await gql(`{ myLeaveMessages(first: 50) { edges { node { id category content status createdAt allowedActions
      replies { at content author { displayName role } } } } } }`);
  const list = d.myLeaveMessages.edges.map((e) => e.node);
  body.innerHTML = list.length ? `<ul class="list" data-test="leave-list">${list.map((m) => `<li data-test="leave-message" data-id="${esc(m.id)}">
      <div class="item-head"><span class="tag">${esc(m.category)}</span>${statusTag(m.status)}<span class="grow"></span><span class="muted small">${fmtTime(m.createdAt)}</span></div>
      <div>${esc(m.content)}</div>
      ${m.replies.map((r) => `<div class="reply" data-test="leave-reply"><span class="muted small">${esc(r.author?.displayName || '')} · ${fmtTime(r.at)}</span><div>${esc(r.content)}</div></div>`).join('')}
      <div class="item-actions">
        ${m.allowedActions.includes('FOLLOW_UP') ? `<button class="small" data-follow="${esc(m.id)}" data-test="leave-follow-up">追问</button>` : ''}
        ${m.allowedActions.includes('CLOSE') ? `<button class="small" data-close="${esc(m.id)}" data-test="leave-close">关闭</button>` : ''}
      </div></li>`).join('')}</ul>` : '<div class="empty">暂无留言</div>';
  // Seeing the replies reads them.
  for (const m of list) {
    if (m.status === 'REPLIED' && m.replies.some((r) => r.author?.role !== 'TAXPAYER')) {
      gql('mutation($id: ID!) { markLeaveMessageRead(id: $id) { id } }', { id: m.id }).then(refreshCounts).catch(() => null);
    }
  }
  body.onclick = async (ev) => {
    const f = ev.target.closest('[data-follow]');
    const c = ev.target.closest('[data-close]');
    if (f) {
      const v = await dialog(`<form><h2>追问</h2><textarea name="content" rows="3" required maxlength="2000" data-test="follow-up-content"></textarea>
        <div class="actions"><button type="button" data-cancel>取消</button><button class="primary" data-test="follow-up-submit">提交</button></div></form>`);
      if (v && await run(() => gql('mutation($i: FollowUpLeaveMessageInput!) { followUpLeaveMessage(input: $i) { id } }', { i: { id: f.dataset.follow, content: v.content } }))) renderTab();
    } else if (c) {
      if (await run(() => gql('mutation($id: ID!) { closeLeaveMessage(id: $id) { id } }', { id: c.dataset.close }))) renderTab();
    }
  };
}

const BOOKING_ACTION = { ACCEPT: ['接受', 'accept', 'primary'], REJECT: ['拒绝', 'reject', ''], CANCEL: ['取消预约', 'cancel', 'danger'] };

async function renderBookings(body) {
  const d = await gql(`query($o: BookingOrigin) { myBookings(origin: $o, first: 50) { edges { node {
      id origin status serviceType method start end note reason agent { displayName } allowedActions } } } }`, { o: pc.bookingOrigin });
  const list = d.myBookings.edges.map((e) => e.node);
  body.innerHTML = `<div class="subtabs"><button class="small ${pc.bookingOrigin === 'MINE' ? 'active' : ''}" data-origin="MINE" data-test="bookings-mine">我的发起</button>
    <button class="small ${pc.bookingOrigin === 'BUREAU_INVITED' ? 'active' : ''}" data-origin="BUREAU_INVITED" data-test="bookings-invited">税局邀请</button>
    <span class="grow"></span><button class="small primary" id="newBooking" data-test="new-booking">新建预约</button></div>` +
    (list.length ? `<ul class="list" data-test="booking-list">${list.map((b) => `<li data-test="booking" data-id="${esc(b.id)}" data-status="${b.status}">
      <div class="item-head"><span class="title">${esc(b.serviceType)}</span><span class="tag">${METHOD_TEXT[b.method] || esc(b.method)}</span>${statusTag(b.status)}
        <span class="grow"></span><span class="muted small">${fmtTime(b.start)}–${fmtHm(b.end)}</span></div>
      ${b.note ? `<div class="muted small">备注：${esc(b.note)}</div>` : ''}${b.reason ? `<div class="muted small">原因：${esc(b.reason)}</div>` : ''}
      ${b.agent ? `<div class="muted small">工作人员：${esc(b.agent.displayName)}</div>` : ''}
      <div class="item-actions">${b.allowedActions.filter((a) => BOOKING_ACTION[a]).map((a) => `<button class="small ${BOOKING_ACTION[a][2]}" data-bact="${a}" data-id="${esc(b.id)}" data-test="booking-${BOOKING_ACTION[a][1]}">${BOOKING_ACTION[a][0]}</button>`).join('')}</div>
    </li>`).join('')}</ul>` : '<div class="empty">暂无预约</div>');
  body.onclick = async (ev) => {
    const o = ev.target.closest('[data-origin]');
    if (o) { pc.bookingOrigin = o.dataset.origin; return renderTab(); }
    if (ev.target.closest('#newBooking')) return bookDialog();
    const b = ev.target.closest('[data-bact]');
    if (!b) return;
    const id = b.dataset.id;
    let done;
    if (b.dataset.bact === 'ACCEPT') {
      done = await run(() => gql('mutation($id: ID!) { acceptInvitation(id: $id) { id status } }', { id }));
      if (done) toast('已接受邀请', 'ok');
    } else {
      const reject = b.dataset.bact === 'REJECT';
      const v = await dialog(`<form><h2>${reject ? '拒绝邀请' : '取消预约'}</h2><label>原因（可选）</label><input name="reason" maxlength="500" data-test="booking-reason">
        <div class="actions"><button type="button" data-cancel>返回</button><button class="primary" data-test="booking-reason-submit">确认</button></div></form>`);
      if (!v) return;
      done = reject
        ? await run(() => gql('mutation($i: RejectInvitationInput!) { rejectInvitation(input: $i) { id } }', { i: { id, reason: v.reason || null } }))
        : await run(() => gql('mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id } }', { i: { id, reason: v.reason || null } }));
    }
    if (done) { refreshCounts(); renderTab(); }
  };
}

// ---- pushed notifications ---------------------------------------------------------------

function watchNotifications() {
  subscribe('subscription { notifications { id kind title body } }', {}, {
    next: (d) => {
      const n = d?.notifications;
      if (n) toast(n.title);
      refreshCounts();
      renderTab();
    },
    error: () => { /* the badges still refresh on every action */ },
  });
}

// ---- start ------------------------------------------------------------------------------

async function main() {
  await loadBotProfile();
  if (!(await signIn())) return;
  document.body.dataset.user = me.id;
  await Promise.all([
    loadHome().catch((e) => toast(errorText(e), 'error')),
    refreshCounts(),
    renderTab(),
    openChat(),
  ]);
  watchNotifications();
  document.body.dataset.ready = '1';
}

main().catch((e) => toast(errorText(e), 'error'));
