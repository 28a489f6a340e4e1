// The project's own GraphQL client, written against API.md: HTTP POST (JSON and the
// GraphQL multipart request spec for uploads) and graphql-transport-ws subscriptions over
// ONE shared WebSocket that reconnects by itself and re-subscribes what is still wanted.

const TOKEN_KEY = 'taxdesk.token';
const HTTP_URL = '/graphql';
const WS_PATH = '/graphql/ws';

/** The token: `?token=` in the URL wins (it is stored, then removed from the address bar). */
export function getToken() {
  try {
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get('token');
    if (fromUrl) {
      localStorage.setItem(TOKEN_KEY, fromUrl);
      url.searchParams.delete('token');
      history.replaceState(null, '', url.pathname + url.search + url.hash);
      return fromUrl;
    }
  } catch { /* no location (tests) */ }
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
  // The same user's fresh token goes to the open socket; a new identity needs a new socket.
  if (!socket.ws) return;
  if (t && socket.acked && sameUser(t, socket.token)) refreshSocket(t);
  else socket.ws.close(1000, 'token changed');
}

/** The claims of the current token (unverified: only for display and routing). */
export function tokenClaims() {
  return claimsOf(getToken());
}

function claimsOf(t) {
  if (!t) return null;
  try {
    const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(escape(atob(part)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

/** Readable Chinese text for each `extensions.code` of API.md. */
export const CODE_TEXT = {
  UNAUTHENTICATED: '请先登录',
  FORBIDDEN: '没有权限执行此操作',
  NOT_FOUND: '未找到相关内容',
  INVALID_INPUT: '输入有误',
  INVALID_TRANSITION: '当前状态下不能执行此操作',
  CONFLICT: '数据已被他人修改，请刷新后重试',
  COOL_DOWN: '操作过于频繁，请稍后再试',
  ALREADY_RATED: '已经评价过了',
  SLOT_FULL: '该时段已约满，请选择其他时段',
  TOO_LATE_TO_CANCEL: '距开始时间太近，已不能取消',
  OFF_HOURS: '当前不在人工服务时间',
  NO_AGENT: '暂无坐席在线',
  RATE_LIMITED: '请求过于频繁，请稍后再试',
  PAYLOAD_TOO_LARGE: '文件太大',
  UNSUPPORTED_MEDIA_TYPE: '不支持的文件类型',
  GRAPHQL_PARSE_FAILED: '请求格式错误',
  GRAPHQL_VALIDATION_FAILED: '请求无效',
  QUERY_TOO_COMPLEX: '请求过于复杂',
  BAD_REQUEST: '请求无效',
  INTERNAL: '服务器内部错误，请稍后重试',
  NETWORK: '网络连接失败，请检查网络后重试',
};

export class GqlError extends Error {
  code;
  errors;
  constructor(errors, code) {
    const list = Array.isArray(errors) && errors.length ? errors : [{ message: String(errors) }];
    const c = code || list[0]?.extensions?.code || 'INTERNAL';
    // The server writes "中文 / English"; a person sees the Chinese half.
    const zh = String(list[0]?.message || '').split(' / ')[0];
    super(zh || CODE_TEXT[c] || c);
    this.name = 'GqlError';
    this.code = c;
    this.errors = list;
  }

  /** A message for a person: the server's Chinese text, else the text of the code. */
  get readable() {
    return this.message || CODE_TEXT[this.code] || '操作失败';
  }
}

function authHeaders() {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function readResponse(res) {
  let body;
  try {
    body = await res.json();
  } catch {
    throw new GqlError([{ message: CODE_TEXT.INTERNAL, extensions: { code: 'INTERNAL' } }]);
  }
  if (body.errors && body.errors.length) throw new GqlError(body.errors);
  if (!body.data) throw new GqlError([{ message: CODE_TEXT.INTERNAL, extensions: { code: 'INTERNAL' } }]);
  return body.data;
}

/** One query or mutation; resolves `data`, throws `GqlError` when there are `errors`. */
export async function gql(query, variables = {}) {
  let res;
  try {
    res = await fetch(HTTP_URL, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
        ...authHeaders(),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new GqlError([{ message: CODE_TEXT.NETWORK, extensions: { code: 'NETWORK' } }]);
  }
  return readResponse(res);
}

const UPLOAD = `mutation Upload($file: Upload!, $sessionId: ID) {
  uploadAttachment(file: $file, sessionId: $sessionId) { id fileName contentType size url }
}`;

/** Uploads one file (GraphQL multipart request spec); resolves the `Attachment`. */
export async function upload(file, sessionId) {
  const form = new FormData();
  form.append('operations', JSON.stringify({
    query: UPLOAD,
    variables: { file: null, sessionId: sessionId ?? null },
  }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', file, file.name || 'file');
  let res;
  try {
    res = await fetch(HTTP_URL, {
      method: 'POST',
      headers: { Accept: 'application/graphql-response+json, application/json', ...authHeaders() },
      body: form,
    });
  } catch {
    throw new GqlError([{ message: CODE_TEXT.NETWORK, extensions: { code: 'NETWORK' } }]);
  }
  return (await readResponse(res)).uploadAttachment;
}

// ---- attachment links ------------------------------------------------------------------
// `Attachment.url` is a short-lived link signed for the signed-in user
// (`/attachments/{id}?user=…&exp=…&sig=…`), put as it is in `<img src>` and `<a href>`: no
// token in any URL. The browser keeps what it loaded, so a redrawn image needs no new link;
// a link clicked after its `exp` is fetched with the Authorization header instead and
// handed to the browser from memory.

/** Whether a signed attachment link is past (or within 5 s of) its expiry. */
function linkExpired(href) {
  const exp = Number(new URL(href, location.origin).searchParams.get('exp'));
  return !exp || exp * 1000 < Date.now() + 5000;
}

async function openExpiredLink(link) {
  const url = new URL(link.href, location.origin);
  const saveAs = link.getAttribute('download');
  // Opened before the fetch, while the click still counts as the person's.
  const win = saveAs === null ? window.open('', '_blank') : null;
  try {
    const res = await fetch(url.pathname, { headers: authHeaders() });
    if (!res.ok) throw new Error(String(res.status));
    const blobUrl = URL.createObjectURL(await res.blob());
    if (win) {
      win.location.href = blobUrl;
    } else {
      const a = document.createElement('a');
      a.href = blobUrl;
      a.download = saveAs || '';
      a.click();
    }
    setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
  } catch {
    win?.close();
  }
}

if (typeof document !== 'undefined') {
  document.addEventListener('click', (ev) => {
    const link = ev.target instanceof Element ? ev.target.closest('a[href^="/attachments/"]') : null;
    if (!link || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    if (!linkExpired(link.href)) return;
    ev.preventDefault();
    openExpiredLink(link);
  });
}

/** HTML-escapes text for use inside markup and attribute values. */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

// ---- graphql-transport-ws: one socket for the page -------------------------------------

const socket = {
  ws: null,
  acked: false,
  token: '', // the token the socket stands on (connection_init, then each refresh)
  refreshTimer: null,
  nextId: 1,
  subs: new Map(), // id -> { query, variables, sink, active }
  retry: 0,
  timer: null,
  closeTimer: null,
};

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${WS_PATH}`;
}

function send(msg) {
  if (socket.ws && socket.ws.readyState === WebSocket.OPEN) socket.ws.send(JSON.stringify(msg));
}

// ---- keeping the socket's token fresh ----------------------------------------------------
// The server closes the socket with 4403 when its token expires. Before that the client
// sends the same user's fresh token in a ping: {type: 'ping', payload: {Authorization}}.

/** Seconds before expiry at which a fresh token is sent. */
const REFRESH_AHEAD_S = 60;
let renewer = null;

/**
 * Sets how a fresh token is obtained when the stored one is about to expire: `fn()`
 * resolves a token (or null). Behind the e-tax site the embedding page may instead store a
 * fresh token with `setToken`; on the embedded default the page signs in again at /login.
 */
export function onTokenRenewal(fn) {
  renewer = fn;
}

function sameUser(a, b) {
  const ca = claimsOf(a);
  const cb = claimsOf(b);
  return !!ca && !!cb && ca.sub === cb.sub && ca.role === cb.role;
}

function scheduleRefresh() {
  clearTimeout(socket.refreshTimer);
  const exp = claimsOf(socket.token)?.exp;
  if (!exp) return;
  const lifeLeft = exp * 1000 - Date.now();
  // A short-lived token is refreshed half-way through what is left of it.
  const ahead = Math.min(REFRESH_AHEAD_S * 1000, lifeLeft / 2);
  socket.refreshTimer = setTimeout(renewSocketToken, Math.max(0, lifeLeft - ahead));
}

function refreshSocket(t) {
  socket.token = t;
  send({ type: 'ping', payload: { Authorization: `Bearer ${t}` } });
  scheduleRefresh();
}

/** The development sign-in (only where the server marks the page): the same claims again. */
async function devLogin() {
  if (typeof document === 'undefined' || !document.documentElement.hasAttribute('data-dev-login')) return null;
  const c = claimsOf(socket.token);
  if (!c) return null;
  const res = await fetch('/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      role: c.role, sub: c.sub, name: c.name, taxpayerId: c.taxpayer_id, email: c.email,
    }),
  });
  if (!res.ok) return null;
  return (await res.json()).token || null;
}

async function renewSocketToken() {
  if (!socket.ws || !socket.acked) return;
  let t = localStorage.getItem(TOKEN_KEY) || '';
  if (!t || t === socket.token) {
    try {
      t = await (renewer || devLogin)();
    } catch {
      t = null;
    }
    if (t && sameUser(t, socket.token)) localStorage.setItem(TOKEN_KEY, t);
  }
  // Nothing fresh: the server closes the socket at expiry and subscribers hear of it.
  if (t && t !== socket.token && sameUser(t, socket.token) && socket.acked) refreshSocket(t);
}

function startSub(id, sub) {
  send({ id, type: 'subscribe', payload: { query: sub.query, variables: sub.variables || {} } });
}

function connect() {
  if (socket.ws || socket.subs.size === 0) return;
  clearTimeout(socket.timer);
  const ws = new WebSocket(wsUrl(), 'graphql-transport-ws');
  socket.ws = ws;
  socket.acked = false;
  ws.onopen = () => {
    const t = getToken();
    socket.token = t;
    ws.send(JSON.stringify({
      type: 'connection_init',
      payload: t ? { Authorization: `Bearer ${t}` } : {},
    }));
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    switch (msg.type) {
      case 'connection_ack':
        socket.acked = true;
        socket.retry = 0;
        scheduleRefresh();
        for (const [id, sub] of socket.subs) startSub(id, sub);
        break;
      case 'ping':
        send({ type: 'pong' });
        break;
      case 'next': {
        const sub = socket.subs.get(msg.id);
        if (!sub) break;
        if (msg.payload?.errors?.length) sub.sink.error?.(new GqlError(msg.payload.errors));
        else sub.sink.next?.(msg.payload?.data);
        break;
      }
      case 'error': {
        const sub = socket.subs.get(msg.id);
        if (!sub) break;
        socket.subs.delete(msg.id);
        sub.sink.error?.(new GqlError(msg.payload));
        break;
      }
      case 'complete': {
        const sub = socket.subs.get(msg.id);
        if (!sub) break;
        socket.subs.delete(msg.id);
        sub.sink.complete?.();
        break;
      }
      default:
        break;
    }
  };
  ws.onclose = (ev) => {
    if (socket.ws !== ws) return;
    socket.ws = null;
    socket.acked = false;
    clearTimeout(socket.refreshTimer);
    // Closed for an expired token while a fresher one is stored: connect again with it.
    const stored = localStorage.getItem(TOKEN_KEY) || '';
    if (ev.code === 4403 && stored && stored !== socket.token && socket.subs.size > 0) {
      socket.timer = setTimeout(connect, 0);
      return;
    }
    if (ev.code === 4403 || ev.code === 4401) {
      // A refused token does not get better by retrying: tell every subscriber once.
      const err = new GqlError([{ message: CODE_TEXT.UNAUTHENTICATED, extensions: { code: 'UNAUTHENTICATED' } }]);
      const subs = [...socket.subs.values()];
      socket.subs.clear();
      for (const s of subs) s.sink.error?.(err);
      return;
    }
    if (socket.subs.size === 0) return;
    // Back off 0.5 s, 1 s, 2 s … up to 15 s, then re-subscribe everything still wanted.
    const delay = Math.min(15000, 500 * 2 ** socket.retry++);
    socket.timer = setTimeout(connect, delay);
  };
  ws.onerror = () => { /* onclose follows and reconnects */ };
}

/**
 * Starts a subscription on the shared socket; `next(data)` gets each event's `data`.
 * Returns a function that stops it (the socket closes when nothing is subscribed).
 */
export function subscribe(query, variables, { next, error, complete } = {}) {
  const id = String(socket.nextId++);
  const sub = { query, variables: variables || {}, sink: { next, error, complete } };
  socket.subs.set(id, sub);
  clearTimeout(socket.closeTimer);
  if (!socket.ws) connect();
  else if (socket.acked) startSub(id, sub);
  return () => {
    if (!socket.subs.delete(id)) return;
    if (socket.acked) send({ id, type: 'complete' });
    if (socket.subs.size === 0) {
      // Linger briefly: a page often unsubscribes and subscribes again right away.
      socket.closeTimer = setTimeout(() => {
        if (socket.subs.size === 0 && socket.ws) {
          const ws = socket.ws;
          socket.ws = null;
          ws.close(1000, 'no subscriptions');
        }
      }, 2000);
    }
  };
}
