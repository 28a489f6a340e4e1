// The staff workbench (坐席工作台): the shell (sign-in, presence, tabs, notifications) that
// loads the other modules. Every button on a state-machine object is drawn from its
// `allowedActions`; every async path is guarded (errors become toasts, never console errors).
import { getToken, setToken, gql, subscribe, esc } from '/js/graphql.js';
import { $, $$, run, toast, showError, fmtTime, STATUS_TEXT } from '/staff/util.js';
import { initChat, openChat } from '/staff/chat.js';
import { initWorkOrders, reloadWorkOrders } from '/staff/workorders.js';
import { initBookings } from '/staff/bookings.js';
import { initLeave } from '/staff/leave.js';
import { initKb, initUnanswered } from '/staff/kb.js';

const Q_BOOT = `query StaffBoot { me { id role displayName }
  myAgentStatus { status skillGroups maxConcurrent }
  workOrderCategories
  unreadCounts { notifications } }`;
const M_PRESENCE = `mutation StaffPresence($input: SetAgentStatusInput!) {
  setAgentStatus(input: $input) { status skillGroups maxConcurrent } }`;
const Q_STAFF = 'query StaffMembers { staffMembers { id displayName role } }';
const Q_NOTIFS = `query StaffNotifs($after: String) { myNotifications(first: 20, after: $after) {
  edges { node { id kind title body targetKind targetId read createdAt } }
  pageInfo { hasNextPage endCursor } } unreadCounts { notifications } }`;
const M_READ_ALL = 'mutation StaffReadAll { markAllNotificationsRead }';
const M_READ = 'mutation StaffReadSome($ids: [ID!]!) { markNotificationsRead(ids: $ids) { id read } }';
const S_NOTIFS = `subscription StaffNotifFeed { notifications { id kind title body targetKind targetId read createdAt } }`;

const ctx = {
  me: null,
  categories: [],
  staff: [],
  setQueueBadge(n) {
    const b = $('#badgeQueue');
    b.dataset.count = String(n);
    b.textContent = n ? String(n) : '';
  },
  staffLoaded: null,
  loadStaff() {
    if (!ctx.staffLoaded) {
      ctx.staffLoaded = gql(Q_STAFF).then((d) => {
        ctx.staff = d.staffMembers || [];
        $('#staffList').innerHTML = ctx.staff
          .map((s) => `<option value="${esc(s.id)}">${esc(s.displayName)}（${esc(s.id)}）</option>`).join('');
      }).catch(() => { ctx.staffLoaded = null; });
    }
    return ctx.staffLoaded;
  },
  workOrderCreated() { if (inited.has('workorders')) reloadWorkOrders(); },
  openChat(id) {
    showTab('chat');
    return openChat(id);
  },
  showTab: (t) => showTab(t),
};

function toLogin() {
  location.href = '/login?role=staff&next=/staff';
}

// ---- tabs ---------------------------------------------------------------------------------

const inited = new Set(['chat']);
const INIT = {
  workorders: () => initWorkOrders(ctx),
  bookings: () => initBookings(ctx),
  leave: () => initLeave(ctx),
  kb: () => initKb(ctx),
  unanswered: () => initUnanswered(ctx),
  notifications: () => initNotifications(),
};

function showTab(name) {
  for (const b of $$('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const p of $$('main > .panel')) p.classList.toggle('hidden', p.id !== `panel-${name}`);
  if (!inited.has(name) && INIT[name]) {
    inited.add(name);
    Promise.resolve().then(INIT[name]).catch(showError);
  }
  try { history.replaceState(null, '', `#${name}`); } catch { /* ignore */ }
}

// ---- presence -----------------------------------------------------------------------------

function drawPresence(p) {
  const status = p?.status || 'OFFLINE';
  const el = $('#presenceStatus');
  el.dataset.status = status;
  el.textContent = `当前：${STATUS_TEXT[status] || status}`;
  el.className = `tag ${status === 'ONLINE' ? 'ok' : status === 'AWAY' ? 'warn' : ''}`;
  for (const b of $$('#presence button[data-status]')) b.classList.toggle('active', b.dataset.status === status);
  if (p) {
    const groups = new Set(p.skillGroups || []);
    for (const cb of $$('[data-test="presence-group"]')) cb.checked = groups.has(cb.value);
    if (p.maxConcurrent) $('#presenceMax').value = String(p.maxConcurrent);
  }
}

async function setPresence(status, btn) {
  const skillGroups = $$('[data-test="presence-group"]').filter((c) => c.checked).map((c) => c.value);
  const max = parseInt($('#presenceMax').value, 10);
  const input = { status, skillGroups };
  if (Number.isFinite(max) && max > 0) input.maxConcurrent = max;
  btn.disabled = true;
  try {
    const d = await gql(M_PRESENCE, { input });
    drawPresence(d.setAgentStatus);
    toast(`状态已切换为“${STATUS_TEXT[d.setAgentStatus.status]}”`, 'ok');
  } catch (e) {
    showError(e);
  } finally {
    btn.disabled = false;
  }
}

// ---- notifications ------------------------------------------------------------------------

const notif = { items: [], cursor: null, hasNext: false, drawn: false };

function setNotifBadge(n) {
  const b = $('#badgeNotif');
  b.dataset.count = String(n);
  b.textContent = n ? String(n) : '';
}

async function initNotifications() {
  const p = $('#panel-notifications');
  p.innerHTML = `<div class="card">
    <div class="row"><h2 class="grow">我的消息</h2>
      <button class="small" id="notifAll" data-test="notif-mark-all">全部标为已读</button></div>
    <ul class="list" id="notifList" data-test="notif-list"></ul>
    <div class="more hidden" id="notifMoreBox"><button class="small" id="notifMore" data-test="notif-load-more">加载更多</button></div>
  </div>`;
  $('#notifAll').addEventListener('click', () => run(async () => {
    await gql(M_READ_ALL);
    for (const n of notif.items) n.read = true;
    setNotifBadge(0);
    drawNotifs();
  }));
  $('#notifMore').addEventListener('click', () => loadNotifs(false));
  notif.drawn = true;
  await loadNotifs(true);
}

async function loadNotifs(reset) {
  await run(async () => {
    const d = await gql(Q_NOTIFS, { after: reset ? null : notif.cursor });
    const c = d.myNotifications;
    const nodes = c.edges.map((e) => e.node);
    notif.items = reset ? nodes : notif.items.concat(nodes.filter((n) => !notif.items.some((x) => x.id === n.id)));
    notif.cursor = c.pageInfo.endCursor;
    notif.hasNext = c.pageInfo.hasNextPage;
    setNotifBadge(d.unreadCounts.notifications);
    drawNotifs();
  });
}

const TARGET_TAB = { WORK_ORDER: 'workorders', BOOKING: 'bookings', LEAVE_MESSAGE: 'leave', CHAT_SESSION: 'chat' };

function drawNotifs() {
  if (!notif.drawn) return;
  const ul = $('#notifList');
  $('#notifMoreBox').classList.toggle('hidden', !notif.hasNext);
  if (!notif.items.length) {
    ul.innerHTML = '<li class="empty">暂无消息</li>';
    return;
  }
  ul.innerHTML = notif.items.map((n) => `<li class="notif ${n.read ? '' : 'unread'}" data-test="notif-item" data-id="${esc(n.id)}" data-read="${n.read}">
    <div class="row"><strong class="grow">${esc(n.title)}</strong><span class="small muted">${esc(fmtTime(n.createdAt))}</span></div>
    <div>${esc(n.body)}</div>
    ${TARGET_TAB[n.targetKind] ? `<button class="link small" data-open="${esc(n.id)}">查看</button>` : ''}
  </li>`).join('');
  ul.querySelectorAll('[data-open]').forEach((b) => b.addEventListener('click', () => {
    const n = notif.items.find((x) => x.id === b.dataset.open);
    if (!n) return;
    if (!n.read) {
      n.read = true;
      gql(M_READ, { ids: [n.id] }).then(() => refreshNotifCount()).catch(() => { /* best effort */ });
      drawNotifs();
    }
    const tab = TARGET_TAB[n.targetKind];
    if (tab === 'chat' && n.targetId) ctx.openChat(n.targetId);
    else showTab(tab);
  }));
}

function refreshNotifCount() {
  return gql('query StaffUnread { unreadCounts { notifications } }')
    .then((d) => setNotifBadge(d.unreadCounts.notifications))
    .catch(() => { /* the badge is refreshed later */ });
}

function onNotification(n) {
  if (!n) return;
  toast(`${n.title}${n.body ? `：${n.body}` : ''}`, 'info');
  if (!notif.items.some((x) => x.id === n.id)) notif.items.unshift(n);
  drawNotifs();
  refreshNotifCount();
}

// ---- start --------------------------------------------------------------------------------

async function main() {
  if (!getToken()) {
    toLogin();
    return;
  }
  let boot;
  try {
    boot = await gql(Q_BOOT);
  } catch (e) {
    if (e.code === 'UNAUTHENTICATED') {
      setToken('');
      toLogin();
      return;
    }
    showError(e);
    document.body.dataset.ready = 'error';
    return;
  }
  ctx.me = boot.me;
  if (ctx.me.role === 'TAXPAYER') {
    toast('当前账号是纳税人账号，请使用坐席账号登录', 'error', 'FORBIDDEN');
    $('#who').textContent = `${ctx.me.displayName}（纳税人）`;
    $('#logout').addEventListener('click', () => { setToken(''); toLogin(); });
    document.body.dataset.ready = 'forbidden';
    return;
  }
  ctx.categories = boot.workOrderCategories || [];
  $('#who').textContent = `${ctx.me.displayName}（${ctx.me.id}）`;
  $('#logout').addEventListener('click', () => { setToken(''); toLogin(); });
  $('#presenceGroups').innerHTML = ctx.categories.map((g) => `<label class="chk"><input type="checkbox"
    data-test="presence-group" value="${esc(g)}"> ${esc(g)}</label>`).join('');
  drawPresence(boot.myAgentStatus);
  for (const b of $$('#presence button[data-status]')) b.addEventListener('click', () => setPresence(b.dataset.status, b));
  for (const b of $$('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  setNotifBadge(boot.unreadCounts?.notifications || 0);
  subscribe(S_NOTIFS, {}, {
    next: (d) => onNotification(d?.notifications),
    error: () => { /* the count is reloaded with the list */ },
  });
  ctx.loadStaff();
  await initChat(ctx).catch(showError);
  const start = location.hash.replace('#', '');
  if (start && start !== 'chat' && INIT[start]) showTab(start);
  document.body.dataset.ready = 'true';
}

window.addEventListener('unhandledrejection', (ev) => {
  // Last line of defence: show, do not log.
  ev.preventDefault();
  showError(ev.reason);
});

main().catch((e) => {
  showError(e);
  document.body.dataset.ready = 'error';
});
