// Small helpers shared by the workbench's modules: toasts, readable errors, formatting,
// and drawing buttons from a state-machine object's `allowedActions`.
import { GqlError, esc } from '/js/graphql.js';

export { esc };

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Readable Chinese text for each `extensions.code` (the server's own Chinese wins). */
export const CODE_TEXT = {
  UNAUTHENTICATED: '登录已失效，请重新登录',
  FORBIDDEN: '没有权限执行此操作',
  NOT_FOUND: '未找到相关内容',
  INVALID_INPUT: '输入有误，请检查后重试',
  INVALID_TRANSITION: '当前状态下不能执行此操作，请刷新',
  CONFLICT: '数据已被他人修改，请刷新后重试',
  COOL_DOWN: '操作过于频繁，请稍后再试',
  ALREADY_RATED: '已经评价过了',
  SLOT_FULL: '该时段已约满，请选择其他时间',
  TOO_LATE_TO_CANCEL: '距开始时间太近，已不能取消',
  OFF_HOURS: '当前不在人工服务时间',
  NO_AGENT: '暂无坐席在线',
  RATE_LIMITED: '请求过于频繁，请稍后再试',
  PAYLOAD_TOO_LARGE: '文件太大',
  UNSUPPORTED_MEDIA_TYPE: '不支持的文件类型',
  GRAPHQL_PARSE_FAILED: '请求格式错误',
  GRAPHQL_VALIDATION_FAILED: '请求无效（页面与服务端版本不一致？）',
  QUERY_TOO_COMPLEX: '请求过于复杂',
  BAD_REQUEST: '请求无效',
  INTERNAL: '服务器内部错误，请稍后重试',
  NETWORK: '网络连接失败，请检查网络后重试',
};

/** A message for a person from any error (GqlError: the server's Chinese, else the code's). */
export function errorText(e) {
  if (e instanceof GqlError || (e && e.code)) {
    const zh = e.errors?.[0]?.extensions?.zh;
    const msg = zh || (typeof e.readable === 'string' ? e.readable : e.message);
    const base = CODE_TEXT[e.code];
    if (msg && base && !msg.includes(base) && e.code !== 'INTERNAL') return `${base}：${msg}`;
    return msg || base || '操作失败';
  }
  return '操作失败，请稍后重试';
}

export function errorCode(e) {
  return (e && e.code) || 'INTERNAL';
}

/** A toast in the corner; `kind` = error | ok | info. */
export function toast(text, kind = 'info', code = '') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = document.createElement('div');
  t.className = `toast ${kind}`;
  t.dataset.test = 'toast';
  t.dataset.kind = kind;
  if (code) t.dataset.code = code;
  t.textContent = text;
  box.append(t);
  while (box.children.length > 5) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 6000 : 3500);
}

let signingOut = false;
export function showError(e) {
  toast(errorText(e), 'error', errorCode(e));
  // An expired or refused token does not get better: back to the sign-in page.
  if (errorCode(e) === 'UNAUTHENTICATED' && !signingOut) {
    signingOut = true;
    setTimeout(() => { location.href = '/login?role=staff&next=/staff'; }, 1500);
  }
}

/** Runs `fn`, showing its error as a toast; never rejects. */
export async function run(fn) {
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  }
}

/** Like `run`, and disables `btn` while it runs. */
export async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try {
    return await run(fn);
  } finally {
    if (btn && btn.isConnected) btn.disabled = false;
  }
}

const TZ = 'Asia/Shanghai';
export const fmtTime = (s) => (s ? new Date(s).toLocaleString('zh-CN', { timeZone: TZ, hour12: false }) : '');
export const fmtHm = (s) => (s ? new Date(s).toLocaleTimeString('zh-CN', {
  timeZone: TZ, hour12: false, hour: '2-digit', minute: '2-digit',
}) : '');

export const STATUS_TEXT = {
  // work orders
  SUBMITTED: '待处理', DISPATCHED: '已派单', IN_PROGRESS: '处理中', COMPLETED: '已办结', TERMINATED: '已终止',
  // bookings
  INVITED: '待答复', CONFIRMED: '已确认', REJECTED: '已拒绝', EXPIRED: '已过期', CANCELLED: '已取消',
  IN_SESSION: '进行中', NO_SHOW: '未到场',
  // leave messages
  REPLIED: '已回复', CLOSED: '已关闭',
  // chat
  BOT: '智能客服', QUEUED: '排队中', ACTIVE: '服务中', ENDED: '已结束', ABANDONED: '已放弃',
  // presence
  ONLINE: '在线', AWAY: '离开', OFFLINE: '离线',
};
export const METHOD_TEXT = { TEXT: '文字', VOICE: '语音', VIDEO: '视频' };
export const PRIORITY_TEXT = { NORMAL: '普通', HIGH: '较高', URGENT: '紧急' };
export const ROLE_TEXT = { TAXPAYER: '纳税人', STAFF: '坐席', ADMIN: '管理员', BOT: '智能客服', SYSTEM: '系统' };
export const EVENT_TEXT = {
  CREATE: '创建', DISPATCH: '派单', ACCEPT: '受理', PROGRESS: '进度', COMPLETE: '办结', URGE: '催办',
  TERMINATE: '终止', RATE: '评价', OVERDUE: '超期', INVITE: '邀请', BOOK: '预约', REJECT: '拒绝',
  CANCEL: '取消', RESCHEDULE: '改期', START: '开始', FINISH: '完成', NO_SHOW: '未到场', EXPIRE: '过期',
  REPLY: '回复', FOLLOW_UP: '追问', CLOSE: '关闭', CONVERT: '转工单', SUBMIT: '提交',
};

export function statusTag(s) {
  const cls = ['COMPLETED', 'CONFIRMED', 'REPLIED', 'ONLINE', 'ACTIVE'].includes(s) ? 'ok'
    : ['TERMINATED', 'REJECTED', 'CANCELLED', 'EXPIRED', 'NO_SHOW', 'CLOSED', 'ENDED', 'ABANDONED', 'OFFLINE'].includes(s)
      ? 'danger' : 'warn';
  return `<span class="tag ${cls}">${esc(STATUS_TEXT[s] || s)}</span>`;
}

/** The history of a state-machine object as a <details>. */
export function historyHtml(history, test) {
  if (!history || !history.length) return '';
  const rows = history.map((h) => `<li><span class="muted">${esc(fmtTime(h.at))}</span>
    ${esc(h.actor?.displayName || h.actor?.id || '系统')}（${esc(ROLE_TEXT[h.actor?.role] || h.actor?.role || '')}）
    ${esc(EVENT_TEXT[h.event] || h.event)}：${esc(STATUS_TEXT[h.fromStatus] || h.fromStatus || '—')} → ${esc(STATUS_TEXT[h.toStatus] || h.toStatus)}
    ${h.note ? `<span class="muted">（${esc(h.note)}）</span>` : ''}</li>`).join('');
  return `<details class="history" data-test="${esc(test)}"><summary>处理记录（${history.length}）</summary><ul>${rows}</ul></details>`;
}

/** `<input type=datetime-local>` value (Asia/Shanghai wall time) → ISO UTC string. */
export function localToIso(v) {
  if (!v) return null;
  // The browser's own time zone may differ from the bureau's: interpret as +08:00.
  const withSec = v.length === 16 ? `${v}:00` : v;
  const d = new Date(`${withSec}+08:00`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** ISO → value for `<input type=datetime-local>` in Asia/Shanghai. */
export function isoToLocal(iso) {
  const d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000);
  return d.toISOString().slice(0, 16);
}

/** Splits text on commas / new lines into trimmed, non-empty parts. */
export function splitList(s, newlinesOnly = false) {
  const re = newlinesOnly ? /\n/ : /[,，、\n]/;
  return String(s || '').split(re).map((x) => x.trim()).filter(Boolean);
}

export function randomId() {
  if (crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export const humanSize = (n) => (n > 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n > 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`);
