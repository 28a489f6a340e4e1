// 在线留言: list by status, reply, close, convert to a work order (from `allowedActions`).
import { gql } from '/js/graphql.js';
import {
  $, esc, run, busy, toast, fmtTime, statusTag, historyHtml, ROLE_TEXT,
} from '/staff/util.js';

const LM = `id category content contact status taxpayer { id displayName }
  attachments { id fileName contentType size url }
  replies { id at content author { id role displayName } }
  sourceSessionId workOrderId workOrder { id number status } closedAt
  version createdAt updatedAt allowedActions
  history { at actor { id role displayName } event fromStatus toStatus note }`;
const Q_LIST = `query StaffLeaveMessages($status: LeaveMessageStatus, $category: String, $after: String) {
  leaveMessages(status: $status, category: $category, first: 20, after: $after) {
    edges { node { ${LM} } } pageInfo { hasNextPage endCursor } totalCount } }`;
const M_REPLY = `mutation StaffReplyLm($input: ReplyLeaveMessageInput!) { replyLeaveMessage(input: $input) { ${LM} } }`;
const M_CLOSE = `mutation StaffCloseLm($id: ID!) { closeLeaveMessage(id: $id) { ${LM} } }`;
const M_CONVERT = `mutation StaffConvertLm($input: ConvertLeaveMessageInput!) { convertLeaveMessage(input: $input) { ${LM} } }`;

let ctx;
const st = { items: [], cursor: null, hasNext: false, total: null };

export function initLeave(context) {
  ctx = context;
  $('#panel-leave').innerHTML = `<div class="card">
    <div class="row filters"><h2 class="grow">在线留言</h2>
      <select id="lmStatus" data-test="lm-filter-status">
        <option value="SUBMITTED" selected>待回复</option>
        <option value="REPLIED">已回复</option><option value="CLOSED">已关闭</option><option value="">全部</option></select>
      <select id="lmCategory" data-test="lm-filter-category"><option value="">全部分类</option>
        ${ctx.categories.map((c) => `<option>${esc(c)}</option>`).join('')}</select>
      <button class="small" id="lmRefresh" data-test="lm-refresh">刷新</button></div>
    <div class="small muted" id="lmTotal"></div>
    <ul class="list" id="lmList" data-test="lm-list"></ul>
    <div class="more hidden" id="lmMoreBox"><button class="small" id="lmMore" data-test="lm-load-more">加载更多</button></div>
  </div>`;
  $('#lmStatus').addEventListener('change', () => reload());
  $('#lmCategory').addEventListener('change', () => reload());
  $('#lmRefresh').addEventListener('click', () => reload());
  $('#lmMore').addEventListener('click', (e) => busy(e.target, () => load(false)));
  return reload();
}

function reload() {
  return run(() => load(true));
}

async function load(reset) {
  const d = await gql(Q_LIST, {
    status: $('#lmStatus').value || null,
    category: $('#lmCategory').value || null,
    after: reset ? null : st.cursor,
  });
  const c = d.leaveMessages;
  const nodes = c.edges.map((e) => e.node);
  st.items = reset ? nodes : st.items.concat(nodes.filter((n) => !st.items.some((x) => x.id === n.id)));
  st.cursor = c.pageInfo.endCursor;
  st.hasNext = c.pageInfo.hasNextPage;
  st.total = c.totalCount ?? null;
  draw();
}

function draw() {
  const ul = $('#lmList');
  $('#lmMoreBox').classList.toggle('hidden', !st.hasNext);
  $('#lmTotal').textContent = st.total != null ? `共 ${st.total} 条` : '';
  if (!st.items.length) {
    ul.innerHTML = '<li class="empty">暂无留言</li>';
    return;
  }
  ul.innerHTML = st.items.map((m) => {
    const acts = m.allowedActions || [];
    const atts = (m.attachments || []).map((a) => (a.contentType.startsWith('image/')
      ? `<a href="${esc(a.url)}" target="_blank" rel="noopener"><img class="thumb" src="${esc(a.url)}" alt="${esc(a.fileName)}" loading="lazy"></a>`
      : `<a href="${esc(a.url)}" target="_blank" rel="noopener" download="${esc(a.fileName)}">📎 ${esc(a.fileName)}</a>`)).join(' ');
    const replies = (m.replies || []).map((r) => `<li class="${r.author?.role === 'TAXPAYER' ? '' : 'staff'}">
      <span class="small muted">${esc(fmtTime(r.at))} ${esc(r.author?.displayName || '')}（${esc(ROLE_TEXT[r.author?.role] || r.author?.role || '')}）</span>
      <div>${esc(r.content)}</div></li>`).join('');
    return `<li data-test="lm-item" data-id="${esc(m.id)}" data-status="${esc(m.status)}">
      <div class="row"><strong class="grow">${esc(m.taxpayer?.displayName || '')}（${esc(m.taxpayer?.id || '')}）· ${esc(m.category)}</strong>
        ${statusTag(m.status)}<span class="small muted">${esc(fmtTime(m.createdAt))}</span></div>
      <div class="desc">${esc(m.content)}</div>
      ${m.contact ? `<div class="small muted">联系方式：${esc(m.contact)}</div>` : ''}
      ${atts ? `<div class="atts">${atts}</div>` : ''}
      ${replies ? `<ul class="replies">${replies}</ul>` : ''}
      ${m.workOrder ? `<div class="small">已转工单：${esc(m.workOrder.number)} ${statusTag(m.workOrder.status)}</div>` : ''}
      <div class="row actions">
        ${acts.includes('REPLY') ? `<button class="small primary" data-test="lm-reply" data-act="REPLY" data-id="${esc(m.id)}">回复</button>` : ''}
        ${acts.includes('CONVERT') ? `<button class="small" data-test="lm-convert" data-act="CONVERT" data-id="${esc(m.id)}">转工单</button>` : ''}
        ${acts.includes('CLOSE') ? `<button class="small danger" data-test="lm-close" data-act="CLOSE" data-id="${esc(m.id)}">关闭</button>` : ''}
      </div>
      <div class="inline-form hidden" data-form="${esc(m.id)}"></div>
      ${historyHtml(m.history, 'lm-history')}
    </li>`;
  }).join('');
  ul.querySelectorAll('[data-act]').forEach((b) => b.addEventListener('click', () => onAction(b)));
}

function replace(m) {
  const i = st.items.findIndex((x) => x.id === m.id);
  if (i >= 0) st.items[i] = m;
  draw();
}

function onAction(btn) {
  const m = st.items.find((x) => x.id === btn.dataset.id);
  if (!m) return;
  const act = btn.dataset.act;
  if (act === 'CLOSE') {
    busy(btn, async () => {
      const d = await gql(M_CLOSE, { id: m.id });
      replace(d.closeLeaveMessage);
      toast('留言已关闭', 'ok');
    });
    return;
  }
  const box = document.querySelector(`[data-form="${CSS.escape(m.id)}"]`);
  box.classList.remove('hidden');
  if (act === 'REPLY') {
    box.innerHTML = `<div class="row"><textarea class="grow" rows="3" maxlength="2000" data-test="lm-reply-content" placeholder="回复内容（将通知纳税人并发送邮件）"></textarea>
      <button class="small primary" data-test="lm-reply-submit">发送回复</button>
      <button class="small" data-test="lm-form-cancel">取消</button></div>`;
  } else {
    box.innerHTML = `<div class="row"><label class="inline">工单分类</label>
      <select data-test="lm-convert-category">${ctx.categories.map((c) => `<option ${c === m.category ? 'selected' : ''}>${esc(c)}</option>`).join('')}</select>
      <button class="small primary" data-test="lm-convert-submit">转为工单</button>
      <button class="small" data-test="lm-form-cancel">取消</button></div>`;
  }
  box.querySelector('[data-test="lm-form-cancel"]').addEventListener('click', () => { box.classList.add('hidden'); box.innerHTML = ''; });
  const submit = box.querySelector('[data-test$="-submit"]');
  submit.addEventListener('click', () => busy(submit, async () => {
    if (act === 'REPLY') {
      const content = box.querySelector('[data-test="lm-reply-content"]').value.trim();
      if (!content) { toast('请填写回复内容', 'error', 'INVALID_INPUT'); return; }
      const d = await gql(M_REPLY, { input: { id: m.id, content } });
      replace(d.replyLeaveMessage);
      toast('回复已发送', 'ok');
    } else {
      const category = box.querySelector('[data-test="lm-convert-category"]').value;
      const d = await gql(M_CONVERT, { input: { id: m.id, category } });
      replace(d.convertLeaveMessage);
      toast(`已转为工单${d.convertLeaveMessage.workOrder ? ` ${d.convertLeaveMessage.workOrder.number}` : ''}`, 'ok');
      ctx.workOrderCreated?.();
    }
  }));
  box.querySelector('textarea, select')?.focus();
}
