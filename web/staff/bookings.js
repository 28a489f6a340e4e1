// 预约: invite a taxpayer (inviteTaxpayer) and list the bureau's bookings; cancel and
// reschedule are drawn from `allowedActions`.
import { gql } from '/js/graphql.js';
import {
  $, esc, run, busy, toast, fmtTime, statusTag, historyHtml, STATUS_TEXT, METHOD_TEXT,
  localToIso, isoToLocal,
} from '/staff/util.js';

const BOOKING = `id origin status serviceType method start end note reason
  taxpayer { id displayName } agent { id displayName } chatSession { id status }
  version createdAt updatedAt allowedActions
  history { at actor { id role displayName } event fromStatus toStatus note }`;
const Q_TYPES = 'query StaffServiceTypes { serviceTypes { code name methods skillGroup slotMinutes capacity bookableDays } }';
const Q_SLOTS = `query StaffSlots($input: AvailableSlotsInput!) { availableSlots(input: $input) { start end remaining } }`;
const Q_LIST = `query StaffBookings($input: BookingsInput, $after: String) {
  bookings(input: $input, first: 20, after: $after) { edges { node { ${BOOKING} } } pageInfo { hasNextPage endCursor } totalCount } }`;
const M_INVITE = `mutation StaffInvite($input: InviteTaxpayerInput!) { inviteTaxpayer(input: $input) { ${BOOKING} } }`;
const M_CANCEL = `mutation StaffCancelBooking($input: CancelBookingInput!) { cancelBooking(input: $input) { ${BOOKING} } }`;
const M_RESCHEDULE = `mutation StaffReschedule($input: RescheduleBookingInput!) { rescheduleBooking(input: $input) { ${BOOKING} } }`;

let ctx;
const st = { types: [], items: [], cursor: null, hasNext: false, total: null };

const typeName = (code) => st.types.find((t) => t.code === code)?.name || code;

export async function initBookings(context) {
  ctx = context;
  const p = $('#panel-bookings');
  p.innerHTML = `<div class="two-col">
    <div class="card invite">
      <h2>邀请纳税人</h2>
      <form id="inviteForm" autocomplete="off">
        <label>纳税人用户 ID</label><input id="ivTp" required maxlength="64" data-test="invite-taxpayer" placeholder="如 tp1">
        <label>服务类型</label><select id="ivType" data-test="invite-service-type"></select>
        <label>方式</label><select id="ivMethod" data-test="invite-method"></select>
        <label>开始时间（北京时间）</label>
        <input type="datetime-local" id="ivStart" required data-test="invite-start">
        <select id="ivSlot" data-test="invite-slot" class="wide"><option value="">— 可选：从可预约时段中选择 —</option></select>
        <label>备注</label><textarea id="ivNote" rows="3" maxlength="500" data-test="invite-note" placeholder="告知纳税人邀请事由"></textarea>
        <div class="row"><button type="submit" class="primary" id="ivSubmit" data-test="invite-submit" disabled>发送邀请</button></div>
      </form>
      <div id="ivResult" class="result hidden" data-test="invite-result"></div>
    </div>
    <div class="card">
      <div class="row filters">
        <h2 class="grow">预约列表</h2>
        <select id="bkStatus" data-test="booking-filter-status"><option value="">全部状态</option>
          ${['INVITED', 'CONFIRMED', 'IN_SESSION', 'COMPLETED', 'REJECTED', 'EXPIRED', 'CANCELLED', 'NO_SHOW'].map((s) => `<option value="${s}">${STATUS_TEXT[s]}</option>`).join('')}</select>
        <label class="chk"><input type="checkbox" id="bkMine" data-test="booking-mine"> 只看我的</label>
        <button class="small" id="bkRefresh" data-test="booking-refresh">刷新</button>
      </div>
      <div class="small muted" id="bkTotal"></div>
      <ul class="list" id="bkList" data-test="booking-list"></ul>
      <div class="more hidden" id="bkMoreBox"><button class="small" id="bkMore" data-test="booking-load-more">加载更多</button></div>
    </div>
  </div>`;
  $('#ivType').addEventListener('change', () => { drawMethods(); loadSlots(); });
  $('#ivMethod').addEventListener('change', loadSlots);
  $('#ivSlot').addEventListener('change', () => { if ($('#ivSlot').value) $('#ivStart').value = isoToLocal($('#ivSlot').value); });
  $('#inviteForm').addEventListener('submit', (ev) => { ev.preventDefault(); invite(); });
  $('#bkStatus').addEventListener('change', () => reload());
  $('#bkMine').addEventListener('change', () => reload());
  $('#bkRefresh').addEventListener('click', () => reload());
  $('#bkMore').addEventListener('click', (e) => busy(e.target, () => load(false)));
  await run(async () => {
    const d = await gql(Q_TYPES);
    st.types = d.serviceTypes || [];
    $('#ivType').innerHTML = st.types.map((t) => `<option value="${esc(t.code)}">${esc(t.name)}</option>`).join('');
    drawMethods();
    // Enabled once the service types are there (the form cannot be sent without one).
    $('#ivSubmit').disabled = !st.types.length;
    await loadSlots();
  });
  await reload();
}

function drawMethods() {
  const t = st.types.find((x) => x.code === $('#ivType').value);
  const methods = t ? t.methods : ['TEXT', 'VOICE', 'VIDEO'];
  $('#ivMethod').innerHTML = methods.map((m) => `<option value="${m}">${METHOD_TEXT[m] || m}</option>`).join('');
}

async function loadSlots() {
  const serviceType = $('#ivType').value;
  if (!serviceType) return;
  const from = new Date();
  const to = new Date(from.getTime() + 14 * 86400000);
  try {
    const d = await gql(Q_SLOTS, {
      input: { serviceType, method: $('#ivMethod').value || null, from: from.toISOString(), to: to.toISOString() },
    });
    const slots = (d.availableSlots || []).slice(0, 200);
    $('#ivSlot').innerHTML = `<option value="">— 可选：从可预约时段中选择（${slots.length}）—</option>${
      slots.map((s) => `<option value="${esc(s.start)}">${esc(fmtTime(s.start))}（余 ${s.remaining}）</option>`).join('')}`;
    if (!$('#ivStart').value && slots.length) $('#ivStart').value = isoToLocal(slots[0].start);
  } catch {
    // Slots are only a help; the start can be typed.
  }
}

async function invite() {
  const btn = $('#ivSubmit');
  await busy(btn, async () => {
    const start = localToIso($('#ivStart').value);
    if (!start) { toast('请选择开始时间', 'error', 'INVALID_INPUT'); return; }
    const input = {
      taxpayerId: $('#ivTp').value.trim(),
      serviceType: $('#ivType').value,
      method: $('#ivMethod').value,
      start,
      note: $('#ivNote').value.trim() || null,
    };
    const d = await gql(M_INVITE, { input });
    const b = d.inviteTaxpayer;
    const r = $('#ivResult');
    r.classList.remove('hidden');
    r.dataset.bookingId = b.id;
    r.dataset.status = b.status;
    r.innerHTML = `已向 ${esc(b.taxpayer?.displayName || input.taxpayerId)} 发出邀请：${esc(typeName(b.serviceType))} ·
      ${esc(METHOD_TEXT[b.method] || b.method)} · ${esc(fmtTime(b.start))} ${statusTag(b.status)}`;
    toast('邀请已发送', 'ok');
    $('#ivNote').value = '';
    await load(true);
  });
}

function reload() {
  return run(() => load(true));
}

async function load(reset) {
  const input = {};
  const s = $('#bkStatus').value;
  if (s) input.status = s;
  if ($('#bkMine').checked) input.agentId = ctx.me.id;
  const d = await gql(Q_LIST, { input, after: reset ? null : st.cursor });
  const c = d.bookings;
  const nodes = c.edges.map((e) => e.node);
  st.items = reset ? nodes : st.items.concat(nodes.filter((n) => !st.items.some((x) => x.id === n.id)));
  st.cursor = c.pageInfo.endCursor;
  st.hasNext = c.pageInfo.hasNextPage;
  st.total = c.totalCount ?? null;
  draw();
}

function draw() {
  const ul = $('#bkList');
  $('#bkMoreBox').classList.toggle('hidden', !st.hasNext);
  $('#bkTotal').textContent = st.total != null ? `共 ${st.total} 条` : '';
  if (!st.items.length) {
    ul.innerHTML = '<li class="empty">暂无预约</li>';
    return;
  }
  ul.innerHTML = st.items.map((b) => {
    const acts = b.allowedActions || [];
    return `<li data-test="booking-item" data-id="${esc(b.id)}" data-status="${esc(b.status)}">
      <div class="row"><strong class="grow">${esc(typeName(b.serviceType))} · ${esc(METHOD_TEXT[b.method] || b.method)}</strong>
        ${statusTag(b.status)}<span class="tag">${b.origin === 'BUREAU_INVITED' ? '税局邀请' : '纳税人预约'}</span></div>
      <div class="small muted">${esc(fmtTime(b.start))} – ${esc(fmtTime(b.end))} · 纳税人 ${esc(b.taxpayer?.displayName || '')}（${esc(b.taxpayer?.id || '')}）
        · 坐席 ${esc(b.agent ? `${b.agent.displayName}（${b.agent.id}）` : '未指定')}</div>
      ${b.note ? `<div class="small">备注：${esc(b.note)}</div>` : ''}
      ${b.reason ? `<div class="small">原因：${esc(b.reason)}</div>` : ''}
      <div class="row actions">
        ${b.chatSession ? `<button class="small" data-open-chat="${esc(b.chatSession.id)}" data-test="booking-open-chat">打开会话</button>` : ''}
        ${acts.includes('RESCHEDULE') ? `<button class="small" data-test="booking-reschedule" data-act="RESCHEDULE" data-id="${esc(b.id)}">改期</button>` : ''}
        ${acts.includes('CANCEL') ? `<button class="small danger" data-test="booking-cancel" data-act="CANCEL" data-id="${esc(b.id)}">取消预约</button>` : ''}
      </div>
      <div class="inline-form hidden" data-form="${esc(b.id)}"></div>
      ${historyHtml(b.history, 'booking-history')}
    </li>`;
  }).join('');
  ul.querySelectorAll('[data-act]').forEach((btn) => btn.addEventListener('click', () => onAction(btn)));
  ul.querySelectorAll('[data-open-chat]').forEach((btn) => btn.addEventListener('click', () => ctx.openChat(btn.dataset.openChat)));
}

function replace(b) {
  const i = st.items.findIndex((x) => x.id === b.id);
  if (i >= 0) st.items[i] = b;
  draw();
}

function onAction(btn) {
  const b = st.items.find((x) => x.id === btn.dataset.id);
  if (!b) return;
  const box = document.querySelector(`[data-form="${CSS.escape(b.id)}"]`);
  box.classList.remove('hidden');
  if (btn.dataset.act === 'CANCEL') {
    box.innerHTML = `<div class="row"><input class="grow" data-test="booking-cancel-reason" placeholder="取消原因" maxlength="500">
      <button class="small danger" data-test="booking-cancel-submit">确认取消</button>
      <button class="small" data-test="booking-form-cancel">返回</button></div>`;
  } else {
    box.innerHTML = `<div class="row"><input type="datetime-local" data-test="booking-reschedule-start" value="${esc(isoToLocal(b.start))}">
      <button class="small primary" data-test="booking-reschedule-submit">确认改期</button>
      <button class="small" data-test="booking-form-cancel">返回</button></div>`;
  }
  box.querySelector('[data-test="booking-form-cancel"]').addEventListener('click', () => { box.classList.add('hidden'); box.innerHTML = ''; });
  const submit = box.querySelector('[data-test$="-submit"]');
  submit.addEventListener('click', () => busy(submit, async () => {
    if (btn.dataset.act === 'CANCEL') {
      const reason = box.querySelector('[data-test="booking-cancel-reason"]').value.trim();
      const d = await gql(M_CANCEL, { input: { id: b.id, reason: reason || null } });
      replace(d.cancelBooking);
      toast('预约已取消', 'ok');
    } else {
      const start = localToIso(box.querySelector('[data-test="booking-reschedule-start"]').value);
      if (!start) { toast('请选择新的开始时间', 'error', 'INVALID_INPUT'); return; }
      const d = await gql(M_RESCHEDULE, { input: { id: b.id, start } });
      replace(d.rescheduleBooking);
      toast('已改期', 'ok');
    }
  }));
}
