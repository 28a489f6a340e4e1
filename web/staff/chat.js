// 会话: the waiting queue, my active chats, the open transcript and the composer,
// remote assistance and audio/video calls. Live through `agentEvents` and `chatEvents`
// (one subscription per chat I take part in), with polling as a fallback.
import { gql, subscribe, upload } from '/js/graphql.js';
import {
  $, esc, run, busy, toast, showError, fmtHm, fmtTime, statusTag, STATUS_TEXT,
  ROLE_TEXT, randomId, humanSize,
} from '/staff/util.js';

const SESSION = `id status skillGroup version firstQuestion lastSeq queuedAt assignedAt endedAt
  taxpayer { id displayName } agent { id displayName } allowedActions reads { userId seq }
  channels { id sessionId kind media status allowedActions }`;
const MESSAGE = `id sessionId seq kind text senderRole sender { id displayName }
  attachment { id fileName contentType size url } clientMessageId createdAt`;

const Q_LISTS = `query StaffChatLists { waitingQueue { ${SESSION} queuePosition } myActiveChats { ${SESSION} } }`;
const Q_SESSION = `query StaffChatSession($id: ID!) { chatSession(id: $id) { ${SESSION} } }`;
const Q_CHANNELS = `query StaffChatChannels($id: ID!) { chatSession(id: $id) { id channels { id sessionId kind media status allowedActions } } }`;
const Q_MESSAGES = `query StaffMessages($sessionId: ID!, $last: Int, $before: String) {
  messages(sessionId: $sessionId, last: $last, before: $before) {
    edges { cursor node { ${MESSAGE} } } pageInfo { hasPreviousPage startCursor } } }`;
const M_ACCEPT = `mutation StaffAccept($id: ID!) { acceptChat(sessionId: $id) { ${SESSION} } }`;
const M_END = `mutation StaffEnd($id: ID!) { endChat(sessionId: $id) { ${SESSION} } }`;
const M_TRANSFER = `mutation StaffTransfer($input: TransferChatInput!) { transferChat(input: $input) { ${SESSION} } }`;
const M_SEND = `mutation StaffSend($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE} } }`;
const M_READ = `mutation StaffRead($input: MarkMessagesReadInput!) { markMessagesRead(input: $input) }`;
const M_TYPING = `mutation StaffTyping($id: ID!) { sendTyping(sessionId: $id) }`;
const CHANNEL = 'id sessionId kind media status allowedActions';
const M_INVITE_CALL = `mutation StaffInviteCall($input: InviteCallInput!) { inviteCall(input: $input) { ${CHANNEL} } }`;
const M_END_CALL = `mutation StaffEndCall($id: ID!) { endCall(id: $id) { ${CHANNEL} } }`;
const M_RESPOND_ASSIST = `mutation StaffRespondAssist($input: RespondRemoteAssistInput!) { respondRemoteAssist(input: $input) { ${CHANNEL} } }`;
const M_END_ASSIST = `mutation StaffEndAssist($id: ID!) { endRemoteAssist(id: $id) { ${CHANNEL} } }`;
const M_SIGNAL = `mutation StaffSignal($input: SendSignalInput!) { sendSignal(input: $input) }`;
const M_CREATE_WO = `mutation StaffWoFromChat($input: CreateWorkOrderInput!) { createWorkOrder(input: $input) { id number status } }`;
const S_CHAT = `subscription StaffChatEvents($sessionId: ID!) { chatEvents(sessionId: $sessionId) {
  kind sessionId message { ${MESSAGE} } session { ${SESSION} } userId readSeq
  signal { channelId from kind payload } channelId channelStatus } }`;
const Q_HISTORY = `query StaffServedChats($after: String) { myChats(first: 20, after: $after) {
  edges { node { ${SESSION} } } pageInfo { hasNextPage endCursor } } }`;
const S_AGENT = 'subscription StaffAgentEvents { agentEvents { kind sessionId skillGroup queueLength } }';

const EMOJIS = ['😀', '😊', '👍', '🙏', '👌', '🤝', '😄', '🎉', '❤️', '🌹', '💪', '😅', '🤔', '👏', '☕', '✅'];
const PAGE = 30;
const POLL_MS = 10000;
const CHANNEL_TEXT = {
  REQUESTED: '请求中', INVITED: '邀请中，等待对方同意', ACTIVE: '进行中', DECLINED: '已拒绝',
  CANCELLED: '已取消', EXPIRED: '已过期（对方未应答）', ENDED: '已结束',
};

let ctx;
const state = {
  queue: [],
  active: [], // sessions
  chats: new Map(), // sessionId -> ChatState
  selected: null,
  pollTimer: null,
  refreshing: null,
  refreshAgain: false,
};

/** Per-session state: the transcript, its subscription, its call / remote assistance. */
function chatState(id) {
  let c = state.chats.get(id);
  if (!c) {
    c = {
      id,
      session: null,
      messages: new Map(), // seq -> message
      pending: new Map(), // clientMessageId -> message sent, not yet confirmed
      hasPrevious: false,
      startCursor: null,
      loaded: false,
      unread: 0,
      unsub: null,
      call: null, // { id, status, media }
      assist: null, // { id, status }
      pc: null,
      pcChannel: null,
      typingUntil: 0,
      lastRead: 0,
    };
    state.chats.set(id, c);
  }
  return c;
}

export function initChat(context) {
  ctx = context;
  $('#queueRefresh').addEventListener('click', () => refreshLists(true));
  $('#historyBox').addEventListener('toggle', () => { if ($('#historyBox').open) loadHistory(true); });
  $('#historyMore').addEventListener('click', (e) => busy(e.target, () => loadHistory(false)));
  subscribeAgentEvents();
  state.pollTimer = setInterval(() => { refreshLists(false); }, POLL_MS);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.selected) markRead(chatState(state.selected));
  });
  return refreshLists(false);
}

/** `agentEvents`, subscribed again after an error (the poll covers the gap). */
function subscribeAgentEvents() {
  const unsub = subscribe(S_AGENT, {}, {
    next: (data) => onAgentEvent(data?.agentEvents),
    error: (e) => {
      try { unsub(); } catch { /* already stopped */ }
      if (e?.code !== 'UNAUTHENTICATED' && e?.code !== 'FORBIDDEN') setTimeout(subscribeAgentEvents, 5000);
    },
    complete: () => setTimeout(subscribeAgentEvents, 5000),
  });
}

// ---- queue and active chats ---------------------------------------------------------------

/** Reloads the queue and my active chats; concurrent calls coalesce. */
export async function refreshLists(showErrors = false) {
  if (state.refreshing) {
    state.refreshAgain = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    try {
      do {
        state.refreshAgain = false;
        try {
          const d = await gql(Q_LISTS);
          state.queue = d.waitingQueue || [];
          setActive(d.myActiveChats || []);
          drawQueue();
          drawActive();
        } catch (e) {
          if (showErrors) showError(e);
        }
      } while (state.refreshAgain);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

function setActive(list) {
  const before = new Set(state.active.map((s) => s.id));
  state.active = list;
  for (const s of list) {
    const c = chatState(s.id);
    c.session = s;
    adoptChannels(c, s.channels);
    ensureSubscribed(c);
    // Missed while the socket was down (the server has newer messages than we do): fetch them.
    if (c.loaded && s.lastSeq > maxSeq(c)) fillGap(c);
    if (!before.has(s.id) && canAutoSelect()) select(s.id);
  }
  // Chats no longer mine: stop listening unless still on screen.
  const now = new Set(list.map((s) => s.id));
  for (const [id, c] of state.chats) {
    if (!now.has(id) && id !== state.selected && c.unsub) {
      c.unsub();
      c.unsub = null;
    }
  }
  if (state.selected) {
    const s = list.find((x) => x.id === state.selected);
    if (s) {
      const c = chatState(s.id);
      // Redraw only what changed: a poll must not rebuild buttons (or a playing video).
      if (headerKey(c) !== c.headerKey) drawHeader(c);
      drawReceipts(c);
    }
  }
}

function headerKey(c) {
  const s = c.session;
  return s ? `${s.status}|${s.version}|${s.agent?.id}|${(s.allowedActions || []).join(',')}` : '';
}

/** A new chat is opened by itself when none is open or the open one is over. */
function canAutoSelect() {
  if (!state.selected) return true;
  const cur = state.chats.get(state.selected)?.session;
  return !cur || !['ACTIVE', 'QUEUED'].includes(cur.status) || cur.agent?.id !== ctx.me.id;
}

function drawQueue() {
  const ul = $('#queueList');
  $('#queueLength').textContent = String(state.queue.length);
  ctx.setQueueBadge(state.queue.length);
  if (!state.queue.length) {
    ul.innerHTML = '<li class="empty">暂无排队</li>';
    return;
  }
  ul.innerHTML = state.queue.map((s) => `
    <li class="queue-item" data-test="queue-item" data-session-id="${esc(s.id)}" data-skill-group="${esc(s.skillGroup)}">
      <div class="row">
        <strong class="grow">${esc(s.taxpayer?.displayName || s.taxpayer?.id || '纳税人')}</strong>
        <span class="tag">${esc(s.skillGroup)}</span>
      </div>
      <div class="small muted">第 ${esc(s.queuePosition ?? '-')} 位 · ${esc(fmtHm(s.queuedAt))} 起等待</div>
      ${s.firstQuestion ? `<div class="small q">${esc(s.firstQuestion)}</div>` : ''}
      ${(s.allowedActions || []).includes('ASSIGN')
    ? `<button class="small primary" data-test="queue-accept" data-id="${esc(s.id)}">接入</button>` : ''}
    </li>`).join('');
  ul.querySelectorAll('[data-test="queue-accept"]').forEach((b) => b.addEventListener('click', () => busy(b, async () => {
    const d = await gql(M_ACCEPT, { id: b.dataset.id });
    const s = d.acceptChat;
    chatState(s.id).session = s;
    await refreshLists(true);
    select(s.id);
    toast('已接入会话', 'ok');
  })));
}

function drawActive() {
  const ul = $('#activeList');
  const max = parseInt($('#presenceMax')?.value, 10);
  $('#activeCount').textContent = `${state.active.length}${Number.isFinite(max) ? ` / ${max}` : ''}`;
  // Unread messages in the tab title, for a workbench left in the background.
  const unread = [...state.chats.values()].reduce((n, c) => n + c.unread, 0);
  document.title = `${unread ? `(${unread}) ` : ''}征纳互动 - 坐席工作台`;
  const shown = [...state.active];
  // The open chat stays listed after it ended or was transferred, until another is opened.
  if (state.selected && !shown.some((s) => s.id === state.selected)) {
    const c = state.chats.get(state.selected);
    if (c?.session) shown.push(c.session);
  }
  if (!shown.length) {
    ul.innerHTML = '<li class="empty">暂无会话</li>';
    return;
  }
  ul.innerHTML = shown.map((s) => {
    const c = chatState(s.id);
    const last = lastMessage(c);
    return `<li class="active-item ${s.id === state.selected ? 'selected' : ''}" data-test="active-item"
        data-session-id="${esc(s.id)}" data-status="${esc(s.status)}" tabindex="0">
      <div class="row"><strong class="grow">${esc(s.taxpayer?.displayName || s.taxpayer?.id || '纳税人')}</strong>
        ${statusTag(s.status)}
        <span class="badge" data-test="active-unread" data-count="${c.unread}">${c.unread || ''}</span></div>
      <div class="small muted ellipsis">${esc(last ? preview(last) : (s.firstQuestion || s.skillGroup))}</div>
    </li>`;
  }).join('');
  ul.querySelectorAll('.active-item').forEach((li) => {
    li.addEventListener('click', () => select(li.dataset.sessionId));
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') select(li.dataset.sessionId); });
  });
}

function lastMessage(c) {
  let best = null;
  for (const m of c.messages.values()) if (!best || m.seq > best.seq) best = m;
  return best;
}

function preview(m) {
  switch (m.kind) {
    case 'IMAGE': return '[图片]';
    case 'FILE': return `[文件] ${m.attachment?.fileName || ''}`;
    default: return m.text || '';
  }
}

function onAgentEvent(e) {
  if (!e) return;
  if (e.kind === 'ASSIGNED') {
    toast('有新的会话分配给您', 'info');
    refreshLists(false).then(() => {
      if (e.sessionId && canAutoSelect()) select(e.sessionId);
    });
  } else {
    refreshLists(false);
  }
}

// ---- chats I served (历史会话) ----------------------------------------------------------------

const hist = { items: [], cursor: null, hasNext: false };

async function loadHistory(reset) {
  await run(async () => {
    const d = await gql(Q_HISTORY, { after: reset ? null : hist.cursor });
    const conn = d.myChats;
    const nodes = conn.edges.map((e) => e.node);
    hist.items = reset ? nodes : hist.items.concat(nodes);
    hist.cursor = conn.pageInfo.endCursor;
    hist.hasNext = conn.pageInfo.hasNextPage;
    const ul = $('#historyList');
    $('#historyMoreBox').classList.toggle('hidden', !hist.hasNext);
    ul.innerHTML = hist.items.length ? hist.items.map((s) => `<li class="active-item" data-test="history-item"
        data-session-id="${esc(s.id)}" data-status="${esc(s.status)}" tabindex="0">
      <div class="row"><strong class="grow">${esc(s.taxpayer?.displayName || s.taxpayer?.id || '纳税人')}</strong>${statusTag(s.status)}</div>
      <div class="small muted ellipsis">${esc(fmtTime(s.endedAt || s.assignedAt || s.queuedAt))} · ${esc(s.firstQuestion || s.skillGroup)}</div>
    </li>`).join('') : '<li class="empty">暂无历史会话</li>';
    ul.querySelectorAll('[data-test="history-item"]').forEach((li) => li.addEventListener('click', () => {
      const s = hist.items.find((x) => x.id === li.dataset.sessionId);
      if (s && !state.chats.get(s.id)?.session) chatState(s.id).session = s;
      select(li.dataset.sessionId);
    }));
  });
}

// ---- the chat subscription ----------------------------------------------------------------

function ensureSubscribed(c) {
  if (c.unsub) return;
  const unsub = subscribe(S_CHAT, { sessionId: c.id }, {
    next: (data) => {
      try {
        onChatEvent(c, data?.chatEvents);
      } catch (err) {
        showError(err);
      }
    },
    error: () => {
      // An error event may leave the subscription registered: stop it for good.
      try { unsub(); } catch { /* already stopped */ }
      if (c.unsub !== unsub) return;
      c.unsub = null;
      // Ended or no longer mine: the lists say so; a chat still mine is subscribed again.
      setTimeout(() => { if (!c.unsub && state.active.some((s) => s.id === c.id)) ensureSubscribed(c); }, 3000);
    },
    complete: () => { if (c.unsub === unsub) c.unsub = null; },
  });
  c.unsub = unsub;
  // Anything sent before the subscription started is in `messages`: reload once live.
  if (c.loaded) loadLatest(c);
}

function onChatEvent(c, e) {
  if (!e) return;
  switch (e.kind) {
    case 'MESSAGE':
      if (e.message) addMessage(c, e.message, true);
      break;
    case 'STATUS':
      if (e.session) {
        const was = c.session?.status;
        c.session = e.session;
        if (was && was !== e.session.status && e.session.status === 'ENDED') {
          toast(`与 ${e.session.taxpayer?.displayName || '纳税人'} 的会话已结束`, 'info');
          closePeer(c);
        }
        if (c.id === state.selected) drawHeader(c);
        refreshLists(false);
      }
      break;
    case 'TYPING':
      if (e.userId && e.userId !== ctx.me.id) {
        c.typingUntil = Date.now() + 4000;
        if (c.id === state.selected) drawTyping(c);
        setTimeout(() => { if (c.id === state.selected) drawTyping(c); }, 4100);
      }
      break;
    case 'CALL':
      if (e.channelId) {
        const was = c.call?.id === e.channelId ? c.call : null;
        c.call = { id: e.channelId, status: e.channelStatus, media: was?.media || '', allowedActions: [] };
        refreshChannels(c);
        if (['ENDED', 'DECLINED', 'EXPIRED', 'CANCELLED'].includes(e.channelStatus)) {
          if (c.pcChannel === e.channelId) closePeer(c);
          if (e.channelStatus === 'DECLINED') toast('对方拒绝了通话邀请', 'info');
        }
        if (c.id === state.selected) drawChannels(c);
      }
      break;
    case 'REMOTE_ASSIST':
      if (e.channelId) {
        c.assist = { id: e.channelId, status: e.channelStatus, allowedActions: [] };
        refreshChannels(c);
        if (e.channelStatus === 'REQUESTED') {
          toast(`${c.session?.taxpayer?.displayName || '纳税人'} 请求远程协助`, 'info');
          if (!state.selected) select(c.id);
        }
        if (['ENDED', 'DECLINED', 'CANCELLED'].includes(e.channelStatus) && c.pcChannel === e.channelId) closePeer(c);
        if (c.id === state.selected) drawChannels(c);
      }
      break;
    case 'READ':
      if (e.userId && e.userId !== ctx.me.id && e.readSeq != null) {
        c.peerRead = Math.max(c.peerRead || 0, e.readSeq);
        if (c.id === state.selected) drawReceipts(c);
      }
      break;
    case 'SIGNAL':
      if (e.signal && e.signal.from !== ctx.me.id) onSignal(c, e.signal);
      break;
    default:
      break;
  }
}

// ---- transcript ----------------------------------------------------------------------------

async function loadLatest(c) {
  try {
    const d = await gql(Q_MESSAGES, { sessionId: c.id, last: PAGE });
    const conn = d.messages;
    if (!c.loaded) {
      c.hasPrevious = conn.pageInfo.hasPreviousPage;
      c.startCursor = conn.pageInfo.startCursor;
    }
    c.loaded = true;
    for (const edge of conn.edges) addMessage(c, edge.node, false);
    if (c.id === state.selected) drawMessages(c, true);
  } catch (e) {
    showError(e);
  }
}

function maxSeq(c) {
  let m = 0;
  for (const k of c.messages.keys()) if (k > m) m = k;
  return m;
}

/** Reads back from the newest message until the ones we have (at most a few pages). */
async function fillGap(c) {
  if (c.filling) return;
  c.filling = true;
  try {
    const known = maxSeq(c);
    let before = null;
    const got = [];
    for (let i = 0; i < 5; i++) {
      const d = await gql(Q_MESSAGES, { sessionId: c.id, last: PAGE, before });
      const edges = d.messages.edges;
      got.push(...edges.map((e) => e.node));
      if (!edges.length || edges[0].node.seq <= known + 1 || !d.messages.pageInfo.hasPreviousPage) break;
      before = d.messages.pageInfo.startCursor;
    }
    let added = false;
    for (const m of got) {
      if (!c.messages.has(m.seq)) {
        added = true;
        addMessage(c, m, false);
        if (c.id !== state.selected && m.sender?.id !== ctx.me.id && m.kind !== 'SYSTEM') c.unread += 1;
      }
    }
    if (added) {
      if (c.id === state.selected) drawMessages(c, true);
      drawActiveSoon();
    }
  } catch {
    // The next poll tries again.
  } finally {
    c.filling = false;
  }
}

async function loadOlder(c, btn) {
  await busy(btn, async () => {
    const box = $('#chatMessages');
    const oldHeight = box ? box.scrollHeight : 0;
    const d = await gql(Q_MESSAGES, { sessionId: c.id, last: PAGE, before: c.startCursor });
    const conn = d.messages;
    c.hasPrevious = conn.pageInfo.hasPreviousPage;
    if (conn.pageInfo.startCursor) c.startCursor = conn.pageInfo.startCursor;
    for (const edge of conn.edges) c.messages.set(edge.node.seq, edge.node);
    if (c.id === state.selected) {
      drawMessages(c, false);
      const b = $('#chatMessages');
      if (b) b.scrollTop = b.scrollHeight - oldHeight;
    }
  });
}

function addMessage(c, m, live) {
  const isNew = !c.messages.has(m.seq);
  c.messages.set(m.seq, m);
  if (m.clientMessageId) c.pending.delete(m.clientMessageId);
  if (!isNew) return;
  const mine = m.sender?.id === ctx.me.id;
  if (c.id === state.selected) {
    // A page of history is drawn whole by its loader; live ones are appended.
    if (live) appendMessage(c, m);
    if (document.visibilityState !== 'hidden') markRead(c);
  } else if (live && !mine && m.kind !== 'SYSTEM') {
    c.unread += 1;
  }
  if (live) drawActiveSoon();
}

let activeTimer = null;
function drawActiveSoon() {
  clearTimeout(activeTimer);
  activeTimer = setTimeout(drawActive, 200);
}

function messageHtml(m) {
  const mine = m.sender?.id === ctx.me.id;
  const role = m.senderRole || '';
  const cls = role === 'SYSTEM' || m.kind === 'SYSTEM' ? 'system' : mine ? 'mine' : '';
  let body;
  const a = m.attachment;
  switch (m.kind) {
    case 'EMOJI':
      body = `<span class="emoji" data-test="message-text">${esc(m.text)}</span>`;
      break;
    case 'IMAGE':
      body = a
        ? `<a href="${esc(a.url)}" target="_blank" rel="noopener"><img data-test="message-image" src="${esc(a.url)}" alt="${esc(a.fileName)}"></a>`
        : '<span class="muted">[图片不可用]</span>';
      break;
    case 'FILE':
      body = a
        ? `<a data-test="message-file" href="${esc(a.url)}" download="${esc(a.fileName)}" target="_blank" rel="noopener">📎 ${esc(a.fileName)}</a> <span class="muted small">${esc(humanSize(a.size))}</span>`
        : '<span class="muted">[文件不可用]</span>';
      break;
    default:
      body = `<span data-test="message-text">${esc(m.text)}</span>`;
  }
  const who = cls === 'system' ? '' : `${esc(m.sender?.displayName || ROLE_TEXT[role] || role)} · `;
  return `<div class="msg ${cls}" data-test="message" data-kind="${esc(m.kind)}" data-role="${esc(role)}"
      data-mine="${mine}" data-seq="${esc(m.seq)}" data-id="${esc(m.id)}">
    <div class="meta">${who}${esc(fmtHm(m.createdAt))}${mine ? ' · <span class="receipt" data-test="message-receipt" data-read="false">未读</span>' : ''}</div>
    <div class="bubble">${body}</div></div>`;
}

/** 已读 / 未读 on my own messages, from the other side's read mark. */
function drawReceipts(c) {
  const box = $('#chatMessages');
  if (!box) return;
  for (const r of c.session?.reads || []) {
    if (r.userId !== ctx.me.id) c.peerRead = Math.max(c.peerRead || 0, r.seq);
  }
  for (const el of box.querySelectorAll('[data-test="message"][data-mine="true"]')) {
    const r = el.querySelector('.receipt');
    if (!r) continue;
    const read = Number(el.dataset.seq) <= (c.peerRead || 0);
    r.textContent = read ? '已读' : '未读';
    r.dataset.read = String(read);
  }
}

function drawMessages(c, toBottom) {
  const box = $('#chatMessages');
  if (!box) return;
  const list = [...c.messages.values()].sort((x, y) => x.seq - y.seq);
  const more = c.hasPrevious
    ? '<div class="more"><button class="small" data-test="chat-load-more" id="chatLoadMore">加载更多</button></div>' : '';
  box.innerHTML = more + (list.length ? list.map(messageHtml).join('') : '<div class="empty">暂无消息</div>');
  const lm = $('#chatLoadMore');
  if (lm) lm.addEventListener('click', () => loadOlder(c, lm));
  drawReceipts(c);
  if (toBottom) box.scrollTop = box.scrollHeight;
}

function appendMessage(c, m) {
  const box = $('#chatMessages');
  if (!box) return;
  // Out of order (an older one): redraw in seq order.
  const lastEl = box.querySelector('[data-test="message"]:last-of-type');
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  if (lastEl && Number(lastEl.dataset.seq) > m.seq) {
    drawMessages(c, nearBottom);
    return;
  }
  box.querySelector('.empty')?.remove();
  box.insertAdjacentHTML('beforeend', messageHtml(m));
  drawReceipts(c);
  const mine = m.sender?.id === ctx.me.id;
  if (nearBottom || mine) box.scrollTop = box.scrollHeight;
}

let readTimer = null;
function markRead(c) {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const last = lastMessage(c);
    if (!last || last.seq <= c.lastRead) return;
    c.lastRead = last.seq;
    gql(M_READ, { input: { sessionId: c.id, seq: last.seq } }).catch(() => { /* read marks are best effort */ });
  }, 500);
}

// ---- the open chat -------------------------------------------------------------------------

export async function select(id) {
  if (!id) return;
  // Already open: nothing to redraw (a click on the open chat, or auto-open then a click).
  if (state.selected === id && $('#chatPanel')?.dataset.sessionId === id && !$('#chatPanel').classList.contains('hidden')) {
    drawActive();
    return;
  }
  const prev = state.selected;
  state.selected = id;
  const c = chatState(id);
  c.unread = 0;
  if (prev && prev !== id) {
    const p = state.chats.get(prev);
    if (p && p.unsub && !state.active.some((s) => s.id === prev)) {
      p.unsub();
      p.unsub = null;
    }
  }
  if (!c.session) {
    const d = await run(() => gql(Q_SESSION, { id }));
    if (!d?.chatSession) return;
    c.session = d.chatSession;
    adoptChannels(c, c.session.channels);
  }
  if (state.selected !== id) return;
  ensureSubscribed(c);
  drawPanel(c);
  drawActive();
  if (!c.loaded) await loadLatest(c);
  else drawMessages(c, true);
  markRead(c);
}

function drawPanel(c) {
  $('#chatEmpty').classList.add('hidden');
  const p = $('#chatPanel');
  p.classList.remove('hidden');
  p.dataset.sessionId = c.id;
  p.innerHTML = `
    <div class="chat-head">
      <div class="grow">
        <div class="row"><strong data-test="chat-title" id="chatTitle"></strong>
          <span id="chatStatus" data-test="chat-status"></span></div>
        <div class="small muted" id="chatSub"></div>
        <div class="small q hidden" id="chatFirstQ" data-test="chat-first-question"></div>
      </div>
      <div class="row" id="chatActions"></div>
    </div>
    <div id="chatChannels" class="channels"></div>
    <div id="chatTransfer" class="inline-form hidden"></div>
    <div id="chatMessages" class="messages" data-test="chat-messages"></div>
    <div class="small muted typing hidden" id="chatTyping" data-test="chat-typing">对方正在输入…</div>
    <div class="composer" id="composer">
      <div class="emoji-pal hidden" id="emojiPal">${EMOJIS.map((e) => `<button class="emoji-btn" data-test="chat-emoji" data-emoji="${e}" title="${e}">${e}</button>`).join('')}</div>
      <div class="row tools">
        <button class="small" id="emojiToggle" data-test="chat-emoji-toggle" title="表情">😊 表情</button>
        <label class="filebtn small">🖼 图片<input type="file" accept="image/*" id="imageInput" data-test="chat-image-input"></label>
        <label class="filebtn small">📎 文件<input type="file" id="fileInput" data-test="chat-file-input"></label>
        <span class="grow"></span>
        <span class="small muted">Enter 发送，Shift+Enter 换行</span>
      </div>
      <div class="row">
        <textarea id="chatInput" class="grow" rows="3" maxlength="2000" placeholder="输入回复…" data-test="chat-input"></textarea>
        <button class="primary" id="chatSend" data-test="chat-send">发送</button>
      </div>
    </div>`;
  // An image that loads after it was appended grows the transcript: stay at the bottom.
  $('#chatMessages').addEventListener('load', (ev) => {
    const box = ev.currentTarget;
    if (ev.target.tagName === 'IMG' && box.scrollHeight - box.scrollTop - box.clientHeight < ev.target.clientHeight + 120) {
      box.scrollTop = box.scrollHeight;
    }
  }, true);
  const input = $('#chatInput');
  $('#chatSend').addEventListener('click', () => sendText(c));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendText(c);
    }
  });
  input.addEventListener('input', () => typing(c));
  $('#emojiToggle').addEventListener('click', () => $('#emojiPal').classList.toggle('hidden'));
  $('#emojiPal').querySelectorAll('[data-test="chat-emoji"]').forEach((b) => b.addEventListener('click', () => {
    $('#emojiPal').classList.add('hidden');
    send(c, { kind: 'EMOJI', text: b.dataset.emoji });
  }));
  $('#imageInput').addEventListener('change', (e) => sendFile(c, e.target, 'IMAGE'));
  $('#fileInput').addEventListener('change', (e) => sendFile(c, e.target, 'FILE'));
  drawHeader(c);
  drawMessages(c, true);
}

function drawHeader(c) {
  if (c.id !== state.selected || !$('#chatTitle')) return;
  c.headerKey = headerKey(c);
  const s = c.session;
  const p = $('#chatPanel');
  p.dataset.status = s.status;
  $('#chatTitle').textContent = `${s.taxpayer?.displayName || '纳税人'}（${s.taxpayer?.id || ''}）`;
  const st = $('#chatStatus');
  st.dataset.status = s.status;
  st.innerHTML = statusTag(s.status);
  $('#chatSub').textContent = `技能组：${s.skillGroup}${s.assignedAt ? ` · 接入于 ${fmtTime(s.assignedAt)}` : ''}${s.endedAt ? ` · 结束于 ${fmtTime(s.endedAt)}` : ''}`;
  const fq = $('#chatFirstQ');
  fq.textContent = s.firstQuestion ? `首问：${s.firstQuestion}` : '';
  fq.classList.toggle('hidden', !s.firstQuestion);
  const acts = s.allowedActions || [];
  // Replies and calls: while the chat is ACTIVE with me as its agent (END allowed to me).
  const mineActive = s.status === 'ACTIVE' && s.agent?.id === ctx.me.id && acts.includes('END');
  const box = $('#chatActions');
  box.innerHTML = `
    ${mineActive ? `<button class="small" data-test="chat-call-audio" id="callAudio">📞 语音通话</button>
      <button class="small" data-test="chat-call-video" id="callVideo">🎥 视频通话</button>` : ''}
    <button class="small" data-test="chat-create-workorder" id="chatWo">转工单</button>
    ${acts.includes('TRANSFER') ? '<button class="small" data-test="chat-transfer" id="chatTransferBtn">转接</button>' : ''}
    ${acts.includes('END') ? '<button class="small danger" data-test="chat-end" id="chatEnd">结束会话</button>' : ''}`;
  $('#callAudio')?.addEventListener('click', (e) => inviteCall(c, 'AUDIO', e.target));
  $('#callVideo')?.addEventListener('click', (e) => inviteCall(c, 'VIDEO', e.target));
  $('#chatWo').addEventListener('click', () => openWorkOrderForm(c));
  $('#chatTransferBtn')?.addEventListener('click', () => openTransfer(c));
  $('#chatEnd')?.addEventListener('click', (e) => endChat(c, e.target));
  const canSend = mineActive;
  $('#chatInput').disabled = !canSend;
  $('#chatSend').disabled = !canSend;
  $('#emojiToggle').disabled = !canSend;
  $('#imageInput').disabled = !canSend;
  $('#fileInput').disabled = !canSend;
  $('#chatInput').placeholder = canSend ? '输入回复…' : `会话${STATUS_TEXT[s.status] || s.status}，不能发送消息`;
  if (!acts.includes('TRANSFER')) $('#chatTransfer').classList.add('hidden');
  drawChannels(c);
  drawTyping(c);
}

function drawTyping(c) {
  const el = $('#chatTyping');
  if (el) el.classList.toggle('hidden', Date.now() > c.typingUntil);
}

let lastTyping = 0;
function typing(c) {
  if (Date.now() - lastTyping < 3000 || c.session?.status !== 'ACTIVE') return;
  lastTyping = Date.now();
  gql(M_TYPING, { id: c.id }).catch(() => { /* typing is best effort */ });
}

async function send(c, { kind, text = null, attachmentId = null }) {
  const clientMessageId = randomId();
  c.pending.set(clientMessageId, true);
  try {
    const d = await gql(M_SEND, { input: { sessionId: c.id, kind, text, attachmentId, clientMessageId } });
    addMessage(c, d.sendMessage, true);
    return true;
  } catch (e) {
    c.pending.delete(clientMessageId);
    showError(e);
    return false;
  }
}

async function sendText(c) {
  const input = $('#chatInput');
  const text = input.value.trim();
  if (!text) return;
  const btn = $('#chatSend');
  btn.disabled = true;
  try {
    if (await send(c, { kind: 'TEXT', text })) input.value = '';
  } finally {
    if (btn.isConnected) btn.disabled = c.session?.status !== 'ACTIVE';
    input.focus();
  }
}

async function sendFile(c, inputEl, kind) {
  const file = inputEl.files && inputEl.files[0];
  inputEl.value = '';
  if (!file) return;
  if (kind === 'IMAGE' && file.type && !file.type.startsWith('image/')) {
    toast('请选择图片文件', 'error', 'INVALID_INPUT');
    return;
  }
  toast(`正在上传 ${file.name}…`, 'info');
  await run(async () => {
    const a = await upload(file, c.id);
    await send(c, { kind, attachmentId: a.id });
  });
}

async function endChat(c, btn) {
  await busy(btn, async () => {
    const d = await gql(M_END, { id: c.id });
    c.session = d.endChat;
    closePeer(c);
    drawHeader(c);
    toast('会话已结束', 'ok');
    await refreshLists(false);
  });
}

function openTransfer(c) {
  const box = $('#chatTransfer');
  box.classList.remove('hidden');
  box.innerHTML = `
    <div class="row">
      <label class="inline">转给坐席</label>
      <input list="staffList" id="trAgent" placeholder="坐席 ID" data-test="chat-transfer-agent">
      <label class="inline">或技能组</label>
      <select id="trGroup" data-test="chat-transfer-group">${ctx.categories.map((g) => `<option value="${esc(g)}" ${g === c.session.skillGroup ? 'selected' : ''}>${esc(g)}</option>`).join('')}</select>
      <button class="small primary" id="trSubmit" data-test="chat-transfer-submit">转接</button>
      <button class="small" id="trCancel" data-test="chat-transfer-cancel">取消</button>
    </div>`;
  ctx.loadStaff();
  $('#trCancel').addEventListener('click', () => box.classList.add('hidden'));
  $('#trSubmit').addEventListener('click', (e) => busy(e.target, async () => {
    const agent = $('#trAgent').value.trim();
    const input = agent ? { sessionId: c.id, toAgentId: agent } : { sessionId: c.id, toSkillGroup: $('#trGroup').value };
    const d = await gql(M_TRANSFER, { input });
    c.session = d.transferChat;
    box.classList.add('hidden');
    drawHeader(c);
    toast(agent ? `已转接给 ${agent}` : `已转回“${input.toSkillGroup}”队列`, 'ok');
    await refreshLists(false);
  }));
}

function openWorkOrderForm(c) {
  const s = c.session;
  const texts = [...c.messages.values()].sort((a, b) => a.seq - b.seq)
    .filter((m) => m.senderRole === 'TAXPAYER' && (m.kind === 'TEXT') && m.text).map((m) => m.text);
  const desc = [s.firstQuestion, ...texts].filter(Boolean).filter((v, i, arr) => arr.indexOf(v) === i).join('\n').slice(0, 2000);
  const title = (s.firstQuestion || texts[0] || `会话 ${s.taxpayer?.displayName || ''} 转工单`).slice(0, 30);
  const cat = ctx.categories.includes(s.skillGroup) ? s.skillGroup : ctx.categories[0];
  const d = document.createElement('dialog');
  d.className = 'dlg';
  d.dataset.test = 'chat-wo-dialog';
  d.innerHTML = `<form method="dialog" id="woForm">
    <h2>由会话创建工单</h2>
    <div class="small muted">纳税人：${esc(s.taxpayer?.displayName || '')}（${esc(s.taxpayer?.id || '')}）</div>
    <label>标题</label><input name="title" required maxlength="100" data-test="chat-wo-title" value="${esc(title)}">
    <label>问题描述</label><textarea name="description" rows="5" required data-test="chat-wo-description">${esc(desc)}</textarea>
    <label>分类</label><select name="category" data-test="chat-wo-category">${ctx.categories.map((g) => `<option ${g === cat ? 'selected' : ''}>${esc(g)}</option>`).join('')}</select>
    <div class="actions"><button type="button" data-test="chat-wo-cancel" id="woCancel">取消</button>
      <button class="primary" type="submit" data-test="chat-wo-submit" id="woSubmit">创建工单</button></div>
  </form>`;
  document.body.append(d);
  const close = () => { d.close(); d.remove(); };
  d.querySelector('#woCancel').addEventListener('click', close);
  d.addEventListener('cancel', () => setTimeout(() => d.remove(), 0));
  d.querySelector('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    busy(d.querySelector('#woSubmit'), async () => {
      const r = await gql(M_CREATE_WO, {
        input: {
          title: String(f.get('title')).trim(),
          description: String(f.get('description')).trim(),
          category: String(f.get('category')),
          taxpayerId: s.taxpayer?.id,
          sourceSessionId: s.id,
        },
      });
      close();
      toast(`已创建工单 ${r.createWorkOrder.number}`, 'ok');
      ctx.workOrderCreated?.();
    });
  });
  d.showModal();
}

// ---- remote assistance and calls -----------------------------------------------------------

/** Takes the session's channels still in play (a reloaded page finds a pending request). */
function adoptChannels(c, channels) {
  for (const ch of channels || []) {
    if (ch.kind === 'REMOTE_ASSIST') c.assist = ch;
    else if (ch.kind === 'CALL') c.call = { ...ch, media: ch.media || c.call?.media || '' };
  }
}

/** What the agent may do with each channel comes from the server (`allowedActions`). */
async function refreshChannels(c) {
  try {
    const d = await gql(Q_CHANNELS, { id: c.id });
    adoptChannels(c, d.chatSession?.channels);
    if (c.id === state.selected) drawChannels(c);
  } catch { /* the event already drew the status; the buttons wait for the next one */ }
}

const can = (ch, action) => (ch.allowedActions || []).includes(action);

function drawChannels(c) {
  const box = $('#chatChannels');
  if (!box) return;
  let html = '';
  const a = c.assist;
  if (a) {
    html += `<div class="channel" data-test="assist-panel" data-status="${esc(a.status)}" data-channel-id="${esc(a.id)}">
      <span>🖥 远程协助：<span data-test="assist-status">${esc(CHANNEL_TEXT[a.status] || a.status)}</span>（仅查看，不控制对方电脑）</span>
      ${can(a, 'ACCEPT') ? '<button class="small primary" data-test="assist-accept" id="assistAccept">接受</button>' : ''}
      ${can(a, 'DECLINE') ? '<button class="small" data-test="assist-decline" id="assistDecline">拒绝</button>' : ''}
      ${can(a, 'END') ? '<button class="small danger" data-test="assist-end" id="assistEnd">结束协助</button>' : ''}
    </div>`;
  }
  const k = c.call;
  if (k) {
    html += `<div class="channel" data-test="call-panel" data-status="${esc(k.status)}" data-media="${esc(k.media || '')}" data-channel-id="${esc(k.id)}">
      <span>${k.media === 'VIDEO' ? '🎥 视频通话' : k.media === 'AUDIO' ? '📞 语音通话' : '📞 通话'}：<span data-test="call-status">${esc(CHANNEL_TEXT[k.status] || k.status)}</span></span>
      ${can(k, 'CANCEL') || can(k, 'END') ? `<button class="small danger" data-test="call-end" id="callEnd">${can(k, 'CANCEL') ? '取消邀请' : '挂断'}</button>` : ''}
    </div>`;
  }
  const live = (a && a.status === 'ACTIVE') || (k && k.status === 'ACTIVE');
  html += `<video class="remote ${live ? '' : 'hidden'}" data-test="remote-media" id="remoteMedia" autoplay playsinline></video>`;
  box.innerHTML = html;
  if (c.pc && c.remoteStream) {
    const v = $('#remoteMedia');
    v.srcObject = c.remoteStream;
    v.play?.().catch(() => { /* autoplay may wait for a gesture */ });
  }
  $('#assistAccept')?.addEventListener('click', (e) => busy(e.target, async () => {
    const d = await gql(M_RESPOND_ASSIST, { input: { id: a.id, accept: true } });
    c.assist = d.respondRemoteAssist;
    drawChannels(c);
  }));
  $('#assistDecline')?.addEventListener('click', (e) => busy(e.target, async () => {
    const d = await gql(M_RESPOND_ASSIST, { input: { id: a.id, accept: false } });
    c.assist = d.respondRemoteAssist;
    drawChannels(c);
  }));
  $('#assistEnd')?.addEventListener('click', (e) => busy(e.target, async () => {
    const d = await gql(M_END_ASSIST, { id: a.id });
    c.assist = d.endRemoteAssist;
    if (c.pcChannel === a.id) closePeer(c);
    drawChannels(c);
  }));
  $('#callEnd')?.addEventListener('click', (e) => busy(e.target, async () => {
    const d = await gql(M_END_CALL, { id: k.id });
    c.call = { ...d.endCall, media: d.endCall.media || k.media };
    if (c.pcChannel === k.id) closePeer(c);
    drawChannels(c);
  }));
}

async function inviteCall(c, media, btn) {
  if (c.call && ['INVITED', 'ACTIVE'].includes(c.call.status)) {
    toast('已有进行中的通话', 'info');
    return;
  }
  await busy(btn, async () => {
    const d = await gql(M_INVITE_CALL, { input: { sessionId: c.id, media } });
    const ch = d.inviteCall;
    c.call = { ...ch, media: ch.media || media };
    drawChannels(c);
    toast('已发送通话邀请，等待对方同意', 'ok');
  });
}

/** WebRTC: the taxpayer offers, the agent answers; both send ICE. Best effort. */
async function onSignal(c, sig) {
  try {
    if (typeof RTCPeerConnection === 'undefined') return;
    let payload;
    try { payload = JSON.parse(sig.payload); } catch { return; }
    if (sig.kind === 'OFFER') {
      closePeer(c);
      const pc = new RTCPeerConnection();
      c.pc = pc;
      c.pcChannel = sig.channelId;
      // ICE that arrives before the offer is applied waits here (addIceCandidate would throw).
      c.pendingIce = [];
      c.remoteStream = new MediaStream();
      pc.ontrack = (ev) => {
        for (const t of ev.streams[0]?.getTracks() || [ev.track]) c.remoteStream.addTrack(t);
        const v = $('#remoteMedia');
        if (v && c.id === state.selected) {
          v.srcObject = c.remoteStream;
          v.classList.remove('hidden');
          v.play?.().catch(() => { /* autoplay may wait for a gesture */ });
        }
      };
      pc.onicecandidate = (ev) => {
        if (!ev.candidate) return;
        gql(M_SIGNAL, { input: { channelId: sig.channelId, kind: 'ICE', payload: JSON.stringify(ev.candidate) } })
          .catch(() => { /* the call may have ended */ });
      };
      // In a call the agent sends their microphone (and camera); in remote assistance nothing.
      const isCall = c.call && c.call.id === sig.channelId;
      if (isCall && navigator.mediaDevices?.getUserMedia) {
        try {
          const local = await navigator.mediaDevices.getUserMedia({ audio: true, video: c.call.media === 'VIDEO' });
          c.localStream = local;
          for (const t of local.getTracks()) pc.addTrack(t, local);
        } catch {
          toast('无法使用麦克风/摄像头，仅接收对方的音视频', 'info');
        }
      }
      await pc.setRemoteDescription(payload);
      for (const candidate of c.pendingIce.splice(0)) await pc.addIceCandidate(candidate);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await gql(M_SIGNAL, { input: { channelId: sig.channelId, kind: 'ANSWER', payload: JSON.stringify(pc.localDescription) } });
    } else if (sig.kind === 'ICE' && c.pc && c.pcChannel === sig.channelId) {
      if (c.pc.remoteDescription) await c.pc.addIceCandidate(payload);
      else c.pendingIce.push(payload);
    }
  } catch {
    toast('音视频连接建立失败（浏览器不支持或网络受限）', 'info');
  }
}

function closePeer(c) {
  try { c.pc?.close(); } catch { /* already closed */ }
  try { c.localStream?.getTracks().forEach((t) => t.stop()); } catch { /* none */ }
  c.pc = null;
  c.pcChannel = null;
  c.localStream = null;
  c.remoteStream = null;
}

/** Opens a chat by id (e.g. from a booking or a notification). */
export function openChat(id) {
  return select(id);
}
