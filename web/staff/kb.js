// 知识库: search, edit and create FAQs (upsertFaq), question bundles (upsertQaPackage), and
// 问题审核, the learning loop: questions the virtual agent did not answer, answers voted 无用
// and chats handed over, each linked to an FAQ (a new phrasing), made into a new FAQ, or
// dismissed.
import { gql } from '/js/graphql.js';
import {
  $, esc, run, busy, toast, fmtTime, splitList,
} from '/staff/util.js';

const FAQ = 'id category question answer keywords similar enabled usefulCount uselessCount updatedAt';
const Q_SEARCH = `query StaffSearchFaqs($text: String!) { searchFaqs(text: $text, first: 30) { ${FAQ} } }`;
const Q_FAQ = `query StaffFaq($id: ID!) { faq(id: $id) { ${FAQ} } }`;
const Q_HOT = `query StaffHotFaqs { hotQuestions(first: 10) { ${FAQ} } }`;
const M_UPSERT = `mutation StaffUpsertFaq($input: UpsertFaqInput!) { upsertFaq(input: $input) { ${FAQ} } }`;
const Q_PACKAGES = 'query StaffQaPackages { qaPackages { id title faqs { id question } } }';
const M_PACKAGE = 'mutation StaffUpsertQa($input: UpsertQaPackageInput!) { upsertQaPackage(input: $input) { id title faqs { id question } } }';
const Q_REVIEW = `query StaffReviewQueue($after: String, $status: AskedQuestionStatus, $reason: AskedQuestionReason) {
  unansweredQuestions(first: 20, after: $after, status: $status, reason: $reason) {
    edges { node { id text reason status closestFaqId linkedFaq { id question } confidence at count lastAskedAt allowedActions
      history { at actor { id displayName } event } } }
    pageInfo { hasNextPage endCursor } totalCount } }`;
const M_LINK = 'mutation StaffLinkAsked($input: LinkAskedQuestionInput!) { linkAskedQuestion(input: $input) { id question } }';
const M_DISMISS = 'mutation StaffDismissAsked($id: ID!) { dismissAskedQuestion(id: $id) { id status } }';
const REASON_TEXT = { UNANSWERED: '未能回答', USELESS: '答案无用', HANDED_OVER: '转了人工' };
const REVIEW_STATUS_TEXT = { OPEN: '待处理', LINKED: '已关联', DISMISSED: '已忽略' };

let ctx;
const kb = { results: [], editing: null, packages: [] };

export async function initKb(context) {
  ctx = context;
  $('#panel-kb').innerHTML = `<div class="two-col">
    <div class="card">
      <div class="row"><h2 class="grow">知识库</h2>
        <button class="small primary" id="kbNew" data-test="kb-new">新建问答</button></div>
      <form class="row" id="kbSearchForm">
        <input class="grow" id="kbText" data-test="kb-search-input" placeholder="搜索问题、关键词…">
        <button class="small" type="submit" data-test="kb-search">搜索</button>
      </form>
      <form class="row" id="kbIdForm">
        <input class="grow" id="kbId" data-test="kb-id-input" placeholder="按编号打开，如 kb-0042">
        <button class="small" type="submit" data-test="kb-open">打开</button>
      </form>
      <div class="small muted" id="kbHint">热点问题：</div>
      <ul class="list" id="kbList" data-test="kb-list"></ul>
    </div>
    <div>
      <div class="card hidden" id="kbFormCard"></div>
      <div class="card">
        <div class="row"><h2 class="grow">问答套餐</h2><button class="small" id="qaNew" data-test="qa-new">新建套餐</button></div>
        <div id="qaFormBox" class="inline-form hidden"></div>
        <ul class="list" id="qaList" data-test="qa-list"></ul>
      </div>
    </div>
  </div>`;
  $('#kbSearchForm').addEventListener('submit', (ev) => { ev.preventDefault(); search(); });
  $('#kbIdForm').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#kbId').value.trim();
    if (!id) return;
    run(async () => {
      const d = await gql(Q_FAQ, { id });
      if (!d.faq) { toast(`未找到问答 ${id}`, 'error', 'NOT_FOUND'); return; }
      openForm(d.faq);
    });
  });
  $('#kbNew').addEventListener('click', () => openForm(null));
  $('#qaNew').addEventListener('click', () => openPackageForm(null));
  await run(async () => {
    const d = await gql(Q_HOT);
    kb.results = d.hotQuestions || [];
    drawResults();
  });
  await loadPackages();
}

async function search() {
  const text = $('#kbText').value.trim();
  if (!text) return;
  await run(async () => {
    const d = await gql(Q_SEARCH, { text });
    kb.results = d.searchFaqs || [];
    $('#kbHint').textContent = `“${text}”的搜索结果（${kb.results.length}）：`;
    drawResults();
  });
}

function drawResults() {
  const ul = $('#kbList');
  if (!kb.results.length) {
    ul.innerHTML = '<li class="empty">没有找到相关问答</li>';
    return;
  }
  ul.innerHTML = kb.results.map((f) => `<li data-test="kb-item" data-id="${esc(f.id)}" data-enabled="${f.enabled}">
    <div class="row"><strong class="grow">${esc(f.question)}</strong>
      ${f.enabled ? '' : '<span class="tag danger">已停用</span>'}
      <span class="tag">${esc(f.category)}</span>
      <button class="small" data-test="kb-edit" data-id="${esc(f.id)}">编辑</button></div>
    <div class="small muted ellipsis2">${esc(f.answer)}</div>
    <div class="small muted">${esc(f.id)} · 有用 ${f.usefulCount} · 无用 ${f.uselessCount} · 更新于 ${esc(fmtTime(f.updatedAt))}</div>
  </li>`).join('');
  ul.querySelectorAll('[data-test="kb-edit"]').forEach((b) => b.addEventListener('click', () => {
    const f = kb.results.find((x) => x.id === b.dataset.id);
    if (f) openForm(f);
  }));
}

/**
 * Opens the FAQ editor: `f` null for a new one; `seed` prefills a new one's question;
 * `card` is where (the knowledge-base page's by default); `onSaved(faq)` runs after a save.
 */
export function openForm(f, seed = '', { card = $('#kbFormCard'), onSaved = null } = {}) {
  if (!card) return;
  card.classList.remove('hidden');
  kb.editing = f;
  const cats = ctx.categories.includes(f?.category) || !f ? ctx.categories : [f.category, ...ctx.categories];
  card.innerHTML = `<form id="kbForm" data-test="kb-form" data-id="${esc(f?.id || '')}">
    <h2>${f ? `编辑问答 ${esc(f.id)}` : '新建问答'}</h2>
    <label>分类</label><select name="category" data-test="kb-category">${cats.map((c) => `<option ${c === f?.category ? 'selected' : ''}>${esc(c)}</option>`).join('')}</select>
    <label>标准问题</label><input name="question" class="wide" required maxlength="200" data-test="kb-question" value="${esc(f?.question || seed)}">
    <label>答案</label><textarea name="answer" class="wide" rows="6" required data-test="kb-answer">${esc(f?.answer || '')}</textarea>
    <label>关键词（逗号或换行分隔）</label><input name="keywords" class="wide" data-test="kb-keywords" value="${esc((f?.keywords || []).join('，'))}">
    <label>相似问法（每行一个）</label><textarea name="similar" class="wide" rows="4" data-test="kb-similar">${esc((f?.similar || []).join('\n'))}</textarea>
    <label class="chk"><input type="checkbox" name="enabled" data-test="kb-enabled" ${!f || f.enabled ? 'checked' : ''}> 启用（参与智能应答和搜索）</label>
    <div class="row"><button type="submit" class="primary" data-test="kb-save" id="kbSave">保存</button>
      <button type="button" data-test="kb-cancel" id="kbCancel">关闭</button></div>
  </form>`;
  $('#kbCancel', card).addEventListener('click', () => { card.classList.add('hidden'); card.innerHTML = ''; });
  $('#kbForm', card).addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    busy($('#kbSave', card), async () => {
      const input = {
        category: form.category.value,
        question: form.question.value.trim(),
        answer: form.answer.value.trim(),
        keywords: splitList(form.keywords.value),
        similar: splitList(form.similar.value, true),
        enabled: form.enabled.checked,
      };
      if (f?.id) input.id = f.id;
      const d = await gql(M_UPSERT, { input });
      const saved = d.upsertFaq;
      toast(`问答已保存（${saved.id}）`, 'ok');
      if (onSaved) {
        await onSaved(saved);
        return;
      }
      const i = kb.results.findIndex((x) => x.id === saved.id);
      if (i >= 0) kb.results[i] = saved; else kb.results.unshift(saved);
      drawResults();
      openForm(saved);
    });
  });
  card.scrollIntoView?.({ block: 'nearest' });
}

async function loadPackages() {
  await run(async () => {
    const d = await gql(Q_PACKAGES);
    kb.packages = d.qaPackages || [];
    drawPackages();
  });
}

function drawPackages() {
  const ul = $('#qaList');
  if (!kb.packages.length) {
    ul.innerHTML = '<li class="empty">暂无问答套餐</li>';
    return;
  }
  ul.innerHTML = kb.packages.map((p) => `<li data-test="qa-item" data-id="${esc(p.id)}">
    <div class="row"><strong class="grow">${esc(p.title)}</strong>
      <button class="small" data-test="qa-edit" data-id="${esc(p.id)}">编辑</button></div>
    <div class="small muted">${p.faqs.map((f) => esc(f.question)).join(' · ')}</div></li>`).join('');
  ul.querySelectorAll('[data-test="qa-edit"]').forEach((b) => b.addEventListener('click', () => {
    openPackageForm(kb.packages.find((p) => p.id === b.dataset.id) || null);
  }));
}

function openPackageForm(p) {
  const box = $('#qaFormBox');
  box.classList.remove('hidden');
  box.innerHTML = `<label>套餐标题</label><input class="wide" id="qaTitle" data-test="qa-title" maxlength="100" value="${esc(p?.title || '')}">
    <label>问答编号（每行一个）</label><textarea class="wide" rows="4" id="qaIds" data-test="qa-faq-ids">${esc((p?.faqs || []).map((f) => f.id).join('\n'))}</textarea>
    <label class="chk"><input type="checkbox" id="qaEnabled" data-test="qa-enabled" checked> 启用</label>
    <div class="row"><button class="small primary" id="qaSave" data-test="qa-save">保存套餐</button>
      <button class="small" id="qaCancel" data-test="qa-cancel">取消</button></div>`;
  $('#qaCancel').addEventListener('click', () => { box.classList.add('hidden'); box.innerHTML = ''; });
  $('#qaSave').addEventListener('click', (e) => busy(e.target, async () => {
    const input = {
      title: $('#qaTitle').value.trim(),
      faqIds: splitList($('#qaIds').value),
      enabled: $('#qaEnabled').checked,
    };
    if (p?.id) input.id = p.id;
    await gql(M_PACKAGE, { input });
    box.classList.add('hidden');
    toast('问答套餐已保存', 'ok');
    await loadPackages();
  }));
}

// ---- 问题审核 (the learning loop) -----------------------------------------------------------

const un = { items: [], cursor: null, hasNext: false, total: null };

export async function initUnanswered(context) {
  ctx = context;
  $('#panel-unanswered').innerHTML = `<div class="two-col">
    <div class="card">
      <div class="row"><h2 class="grow">问题审核</h2>
        <select id="reviewStatus" data-test="review-filter-status">
          <option value="OPEN" selected>待处理</option><option value="LINKED">已关联</option>
          <option value="DISMISSED">已忽略</option><option value="">全部</option></select>
        <select id="reviewReason" data-test="review-filter-reason"><option value="">全部原因</option>
          ${Object.entries(REASON_TEXT).map(([k, v]) => `<option value="${k}">${v}</option>`).join('')}</select>
        <button class="small" id="unRefresh" data-test="unanswered-refresh">刷新</button></div>
      <div class="small muted">智能客服未能回答、答案被评“无用”或转了人工的问题：关联到已有问答（成为它的相似问法，立即可答）、新建问答，或忽略。</div>
      <div class="small muted" id="unTotal" data-test="review-total"></div>
      <ul class="list" id="unList" data-test="unanswered-list"></ul>
      <div class="more hidden" id="unMoreBox"><button class="small" id="unMore" data-test="unanswered-load-more">加载更多</button></div>
    </div>
    <div><div class="card hidden" id="reviewFormCard" data-test="review-form-card"></div></div>
  </div>`;
  $('#unRefresh').addEventListener('click', () => run(() => loadUnanswered(true)));
  $('#reviewStatus').addEventListener('change', () => run(() => loadUnanswered(true)));
  $('#reviewReason').addEventListener('change', () => run(() => loadUnanswered(true)));
  $('#unMore').addEventListener('click', (e) => busy(e.target, () => loadUnanswered(false)));
  await run(() => loadUnanswered(true));
}

async function loadUnanswered(reset) {
  const status = $('#reviewStatus').value || null; // null: every status
  const reason = $('#reviewReason').value || null;
  const d = await gql(Q_REVIEW, { after: reset ? null : un.cursor, status, reason });
  const c = d.unansweredQuestions;
  const nodes = c.edges.map((e) => e.node);
  un.items = reset ? nodes : un.items.concat(nodes);
  un.cursor = c.pageInfo.endCursor;
  un.hasNext = c.pageInfo.hasNextPage;
  un.total = c.totalCount ?? null;
  drawQueue();
}

function drawQueue() {
  const ul = $('#unList');
  $('#unMoreBox').classList.toggle('hidden', !un.hasNext);
  $('#unTotal').textContent = un.total != null ? `共 ${un.total} 条` : '';
  if (!un.items.length) {
    ul.innerHTML = '<li class="empty">暂无待审问题</li>';
    return;
  }
  ul.innerHTML = un.items.map((q) => {
    const can = (a) => q.allowedActions.includes(a);
    const done = q.history.at(-1);
    return `<li data-test="unanswered-item" data-id="${esc(q.id)}" data-status="${q.status}" data-reason="${q.reason}">
    <div class="row"><span class="grow" data-test="review-text">${esc(q.text)}</span>
      <span class="tag" data-test="review-reason">${esc(REASON_TEXT[q.reason] || q.reason)}</span>
      ${q.count > 1 ? `<span class="tag" data-test="review-count">问过 ${q.count} 次</span>` : ''}
      <span class="tag" data-test="review-status">${esc(REVIEW_STATUS_TEXT[q.status] || q.status)}</span></div>
    <div class="small muted">${esc(fmtTime(q.at))} · 置信度 ${(q.confidence * 100).toFixed(0)}%${q.closestFaqId ? ` · 最接近：<button class="link small" data-faq="${esc(q.closestFaqId)}">${esc(q.closestFaqId)}</button>` : ''}
      ${q.linkedFaq ? ` · 已关联到 <span data-test="review-linked-faq" data-faq-id="${esc(q.linkedFaq.id)}">${esc(q.linkedFaq.question)}</span>` : ''}
      ${done ? ` · ${esc(done.actor.displayName)} 于 ${esc(fmtTime(done.at))} 处理` : ''}</div>
    <div class="row">
      ${can('LINK') ? `<button class="small" data-test="review-link" data-id="${esc(q.id)}">关联到问答</button>
        <button class="small" data-test="unanswered-to-faq" data-id="${esc(q.id)}">新建问答</button>` : ''}
      ${can('DISMISS') ? `<button class="small" data-test="review-dismiss" data-id="${esc(q.id)}">忽略</button>` : ''}
    </div>
    <div class="inline-form hidden" data-test="review-link-form" data-id="${esc(q.id)}"></div>
  </li>`;
  }).join('');
  const item = (b) => un.items.find((x) => x.id === b.dataset.id);
  ul.querySelectorAll('[data-test="review-link"]').forEach((b) => b.addEventListener('click', () => openLinkForm(item(b))));
  ul.querySelectorAll('[data-test="unanswered-to-faq"]').forEach((b) => b.addEventListener('click', () => newFaqFrom(item(b))));
  ul.querySelectorAll('[data-test="review-dismiss"]').forEach((b) => b.addEventListener('click', () => busy(b, async () => {
    await gql(M_DISMISS, { id: b.dataset.id });
    toast('已忽略该问题', 'ok');
    await loadUnanswered(true);
  })));
  ul.querySelectorAll('[data-faq]').forEach((b) => b.addEventListener('click', () => run(async () => {
    const d2 = await gql(Q_FAQ, { id: b.dataset.faq });
    if (!d2.faq) { toast('该问答已不存在', 'error', 'NOT_FOUND'); return; }
    openForm(d2.faq, '', { card: $('#reviewFormCard') });
  })));
}

async function link(q, faq) {
  await gql(M_LINK, { input: { askedQuestionId: q.id, faqId: faq.id } });
  toast(`已关联到“${faq.question}”，该问法现在可以直接回答`, 'ok');
  await loadUnanswered(true);
}

/** 关联到问答: search the FAQs (starting from the question itself) and pick one. */
function openLinkForm(q) {
  const box = $(`[data-test="review-link-form"][data-id="${CSS.escape(q.id)}"]`);
  box.classList.remove('hidden');
  box.innerHTML = `<form class="row" data-test="review-link-search-form">
      <input class="grow" data-test="review-link-search" value="${esc(q.text)}" placeholder="搜索要关联的问答">
      <button class="small" type="submit" data-test="review-link-search-submit">搜索</button>
      <button class="small" type="button" data-test="review-link-cancel">取消</button></form>
    <ul class="list" data-test="review-link-results"></ul>`;
  const results = $('[data-test="review-link-results"]', box);
  const search = () => run(async () => {
    const text = $('[data-test="review-link-search"]', box).value.trim();
    if (!text) return;
    const found = (await gql(Q_SEARCH, { text })).searchFaqs || [];
    results.innerHTML = found.length ? found.slice(0, 8).map((f) => `<li data-test="review-link-result" data-faq-id="${esc(f.id)}">
      <div class="row"><span class="grow">${esc(f.question)}</span><span class="small muted">${esc(f.id)}</span>
        <button class="small primary" data-test="review-link-choose" data-faq-id="${esc(f.id)}">关联</button></div></li>`).join('')
      : '<li class="empty">没有找到相关问答</li>';
    results.querySelectorAll('[data-test="review-link-choose"]').forEach((b) => b.addEventListener('click', () => busy(b, async () => {
      await link(q, found.find((f) => f.id === b.dataset.faqId));
    })));
  });
  $('[data-test="review-link-search-form"]', box).addEventListener('submit', (ev) => { ev.preventDefault(); search(); });
  $('[data-test="review-link-cancel"]', box).addEventListener('click', () => { box.classList.add('hidden'); box.innerHTML = ''; });
  search();
}

/** 新建问答: the editor prefilled with the question; once saved, the question is linked to it. */
function newFaqFrom(q) {
  const card = $('#reviewFormCard');
  openForm(null, q.text, {
    card,
    onSaved: async (saved) => {
      card.classList.add('hidden');
      card.innerHTML = '';
      await link(q, saved);
    },
  });
}
