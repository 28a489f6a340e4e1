// 工单: the list with filters, dispatch / accept / progress / complete (buttons from
// `allowedActions`), and a new order on behalf of a taxpayer.
import { gql } from '/js/graphql.js';
import {
  $, esc, run, busy, toast, fmtTime, statusTag, historyHtml, STATUS_TEXT, PRIORITY_TEXT,
} from '/staff/util.js';

const WO = `id number title description category status priority urgeCount deadline overdue
  taxpayer { id displayName } handler { id displayName } resolution sourceSessionId sourceLeaveMessageId
  rating { score comment } version createdAt updatedAt allowedActions
  history { at actor { id role displayName } event fromStatus toStatus note }`;
const Q_LIST = `query StaffWorkOrders($filter: WorkOrderFilter, $after: String) {
  workOrders(filter: $filter, first: 20, after: $after) {
    edges { node { ${WO} } } pageInfo { hasNextPage endCursor } totalCount } }`;
const M = {
  DISPATCH: `mutation StaffDispatch($input: DispatchWorkOrderInput!) { dispatchWorkOrder(input: $input) { ${WO} } }`,
  ACCEPT: `mutation StaffAcceptWo($id: ID!) { acceptWorkOrder(id: $id) { ${WO} } }`,
  PROGRESS: `mutation StaffProgress($input: AddWorkOrderProgressInput!) { addWorkOrderProgress(input: $input) { ${WO} } }`,
  COMPLETE: `mutation StaffComplete($input: CompleteWorkOrderInput!) { completeWorkOrder(input: $input) { ${WO} } }`,
  CREATE: `mutation StaffCreateWo($input: CreateWorkOrderInput!) { createWorkOrder(input: $input) { ${WO} } }`,
};
// The staff-side actions and their buttons; the taxpayer's (URGE, TERMINATE, RATE) and the
// system's (OVERDUE) never appear for staff.
const ACTIONS = [
  ['DISPATCH', 'wo-dispatch', '派单'],
  ['ACCEPT', 'wo-accept', '受理'],
  ['PROGRESS', 'wo-progress', '添加进度'],
  ['COMPLETE', 'wo-complete', '办结'],
];

let ctx;
const st = { items: [], cursor: null, hasNext: false, total: null };

export function initWorkOrders(context) {
  ctx = context;
  const p = $('#panel-workorders');
  p.innerHTML = `<div class="card">
    <div class="row filters">
      <h2 class="grow">工单</h2>
      <select id="woStatus" data-test="wo-filter-status"><option value="">全部状态</option>
        ${['SUBMITTED', 'DISPATCHED', 'IN_PROGRESS', 'COMPLETED', 'TERMINATED'].map((s) => `<option value="${s}">${STATUS_TEXT[s]}</option>`).join('')}</select>
      <select id="woCategory" data-test="wo-filter-category"><option value="">全部分类</option>
        ${ctx.categories.map((c) => `<option>${esc(c)}</option>`).join('')}</select>
      <label class="chk"><input type="checkbox" id="woMine" data-test="wo-filter-mine"> 只看我处理的</label>
      <label class="chk"><input type="checkbox" id="woOverdue" data-test="wo-filter-overdue"> 只看超期</label>
      <button class="small" id="woRefresh" data-test="wo-refresh">查询</button>
      <button class="small primary" id="woNew" data-test="wo-new">新建工单</button>
    </div>
    <div id="woNewBox" class="inline-form hidden"></div>
    <div class="small muted" id="woTotal"></div>
    <ul class="list" id="woList" data-test="wo-list"></ul>
    <div class="more hidden" id="woMoreBox"><button class="small" id="woMore" data-test="wo-load-more">加载更多</button></div>
  </div>`;
  for (const id of ['woStatus', 'woCategory', 'woMine', 'woOverdue']) $(`#${id}`).addEventListener('change', () => reloadWorkOrders());
  $('#woRefresh').addEventListener('click', () => reloadWorkOrders());
  $('#woMore').addEventListener('click', (e) => busy(e.target, () => load(false)));
  $('#woNew').addEventListener('click', openNew);
  ctx.loadStaff();
  return reloadWorkOrders();
}

export function reloadWorkOrders() {
  return run(() => load(true));
}

function filter() {
  const f = {};
  const s = $('#woStatus').value;
  if (s) f.status = s;
  const c = $('#woCategory').value;
  if (c) f.category = c;
  if ($('#woMine').checked) f.handlerId = ctx.me.id;
  if ($('#woOverdue').checked) f.overdue = true;
  return f;
}

async function load(reset) {
  const d = await gql(Q_LIST, { filter: filter(), after: reset ? null : st.cursor });
  const c = d.workOrders;
  const nodes = c.edges.map((e) => e.node);
  st.items = reset ? nodes : st.items.concat(nodes.filter((n) => !st.items.some((x) => x.id === n.id)));
  st.cursor = c.pageInfo.endCursor;
  st.hasNext = c.pageInfo.hasNextPage;
  st.total = c.totalCount ?? null;
  draw();
}

function draw() {
  const ul = $('#woList');
  $('#woMoreBox').classList.toggle('hidden', !st.hasNext);
  $('#woTotal').textContent = st.total != null ? `共 ${st.total} 条` : '';
  if (!st.items.length) {
    ul.innerHTML = '<li class="empty">没有符合条件的工单</li>';
    return;
  }
  ul.innerHTML = st.items.map(itemHtml).join('');
  ul.querySelectorAll('[data-act]').forEach((b) => b.addEventListener('click', () => onAction(b)));
  ul.querySelectorAll('[data-chat]').forEach((b) => b.addEventListener('click', () => ctx.openChat(b.dataset.chat)));
}

function itemHtml(o) {
  const acts = o.allowedActions || [];
  const buttons = ACTIONS.filter(([a]) => acts.includes(a))
    .map(([a, test, label]) => `<button class="small ${a === 'COMPLETE' ? 'primary' : ''}" data-test="${test}" data-act="${a}" data-id="${esc(o.id)}">${label}</button>`).join('');
  return `<li class="wo" data-test="wo-item" data-id="${esc(o.id)}" data-number="${esc(o.number)}" data-status="${esc(o.status)}">
    <div class="row">
      <strong>${esc(o.number)}</strong>
      <span class="grow">${esc(o.title)}</span>
      <span data-test="wo-status">${statusTag(o.status)}</span>
      ${o.priority !== 'NORMAL' ? `<span class="tag danger">${esc(PRIORITY_TEXT[o.priority] || o.priority)}</span>` : ''}
      ${o.overdue ? '<span class="tag danger">已超期</span>' : ''}
    </div>
    <div class="small muted">${esc(o.category)} · 纳税人 ${esc(o.taxpayer?.displayName || '')}（${esc(o.taxpayer?.id || '')}）
      · 处理人 ${esc(o.handler ? `${o.handler.displayName}（${o.handler.id}）` : '未派单')}
      · 创建 ${esc(fmtTime(o.createdAt))}${o.deadline ? ` · 期限 ${esc(fmtTime(o.deadline))}` : ''}
      ${o.urgeCount ? ` · 催办 ${o.urgeCount} 次` : ''}${o.sourceSessionId ? ' · 来自会话' : ''}${o.sourceLeaveMessageId ? ' · 来自留言' : ''}</div>
    <div class="desc">${esc(o.description)}</div>
    ${o.resolution ? `<div class="small">办理结果：${esc(o.resolution)}</div>` : ''}
    ${o.rating ? `<div class="small">评价：${'★'.repeat(o.rating.score)}${o.rating.comment ? `（${esc(o.rating.comment)}）` : ''}</div>` : ''}
    <div class="row actions">${buttons}${o.sourceSessionId ? `<button class="small link" data-test="wo-open-chat" data-chat="${esc(o.sourceSessionId)}">查看来源会话</button>` : ''}</div>
    <div class="inline-form hidden" data-form="${esc(o.id)}"></div>
    ${historyHtml(o.history, 'wo-history')}
  </li>`;
}

function replace(o) {
  const i = st.items.findIndex((x) => x.id === o.id);
  if (i >= 0) st.items[i] = o;
  draw();
}

function onAction(b) {
  const o = st.items.find((x) => x.id === b.dataset.id);
  if (!o) return;
  const act = b.dataset.act;
  if (act === 'ACCEPT') {
    busy(b, async () => {
      const d = await gql(M.ACCEPT, { id: o.id });
      replace(d.acceptWorkOrder);
      toast(`已受理 ${o.number}`, 'ok');
    });
    return;
  }
  const box = document.querySelector(`[data-form="${CSS.escape(o.id)}"]`);
  box.classList.remove('hidden');
  if (act === 'DISPATCH') {
    box.innerHTML = `<div class="row">
      <label class="inline">处理人</label>
      <input list="staffList" data-test="wo-dispatch-handler" placeholder="坐席 ID" value="${esc(o.handler?.id || ctx.me.id)}">
      <input class="grow" data-test="wo-dispatch-note" placeholder="派单说明（可选）" maxlength="500">
      <button class="small primary" data-test="wo-dispatch-submit">派单</button>
      <button class="small" data-test="wo-form-cancel">取消</button></div>`;
  } else if (act === 'PROGRESS') {
    box.innerHTML = `<div class="row">
      <textarea class="grow" rows="2" data-test="wo-progress-note" placeholder="进度说明（纳税人可见）" maxlength="2000"></textarea>
      <button class="small primary" data-test="wo-progress-submit">提交进度</button>
      <button class="small" data-test="wo-form-cancel">取消</button></div>`;
  } else if (act === 'COMPLETE') {
    box.innerHTML = `<div class="row">
      <textarea class="grow" rows="2" data-test="wo-complete-resolution" placeholder="办理结果（纳税人可见）" maxlength="2000"></textarea>
      <button class="small primary" data-test="wo-complete-submit">办结</button>
      <button class="small" data-test="wo-form-cancel">取消</button></div>`;
  }
  box.querySelector('[data-test="wo-form-cancel"]').addEventListener('click', () => { box.classList.add('hidden'); box.innerHTML = ''; });
  const submit = box.querySelector('[data-test$="-submit"]');
  submit.addEventListener('click', () => busy(submit, async () => {
    if (act === 'DISPATCH') {
      const handlerId = box.querySelector('[data-test="wo-dispatch-handler"]').value.trim();
      const note = box.querySelector('[data-test="wo-dispatch-note"]').value.trim();
      if (!handlerId) { toast('请填写处理人', 'error', 'INVALID_INPUT'); return; }
      const d = await gql(M.DISPATCH, { input: { id: o.id, handlerId, note: note || null } });
      replace(d.dispatchWorkOrder);
      toast(`${o.number} 已派给 ${handlerId}`, 'ok');
    } else if (act === 'PROGRESS') {
      const note = box.querySelector('[data-test="wo-progress-note"]').value.trim();
      if (!note) { toast('请填写进度说明', 'error', 'INVALID_INPUT'); return; }
      const d = await gql(M.PROGRESS, { input: { id: o.id, note } });
      replace(d.addWorkOrderProgress);
      toast('进度已提交', 'ok');
    } else if (act === 'COMPLETE') {
      const resolution = box.querySelector('[data-test="wo-complete-resolution"]').value.trim();
      if (!resolution) { toast('请填写办理结果', 'error', 'INVALID_INPUT'); return; }
      const d = await gql(M.COMPLETE, { input: { id: o.id, resolution } });
      replace(d.completeWorkOrder);
      toast(`${o.number} 已办结`, 'ok');
    }
  }));
  box.querySelector('input, textarea')?.focus();
}

function openNew() {
  const box = $('#woNewBox');
  box.classList.toggle('hidden');
  if (box.classList.contains('hidden')) return;
  box.innerHTML = `<div class="grid2">
    <div><label>纳税人 ID</label><input data-test="wo-new-taxpayer" id="wnTp" maxlength="64"></div>
    <div><label>分类</label><select data-test="wo-new-category" id="wnCat">${ctx.categories.map((c) => `<option>${esc(c)}</option>`).join('')}</select></div>
  </div>
  <label>标题</label><input data-test="wo-new-title" id="wnTitle" maxlength="100" class="wide">
  <label>问题描述</label><textarea data-test="wo-new-description" id="wnDesc" rows="3" class="wide"></textarea>
  <div class="row"><button class="small primary" data-test="wo-new-submit" id="wnSubmit">创建</button>
    <button class="small" data-test="wo-new-cancel" id="wnCancel">取消</button></div>`;
  $('#wnCancel').addEventListener('click', () => box.classList.add('hidden'));
  $('#wnSubmit').addEventListener('click', (e) => busy(e.target, async () => {
    const input = {
      taxpayerId: $('#wnTp').value.trim(),
      category: $('#wnCat').value,
      title: $('#wnTitle').value.trim(),
      description: $('#wnDesc').value.trim(),
    };
    const d = await gql(M.CREATE, { input });
    box.classList.add('hidden');
    toast(`已创建工单 ${d.createWorkOrder.number}`, 'ok');
    await load(true);
  }));
}
