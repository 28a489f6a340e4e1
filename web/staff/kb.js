// 知识库: search, edit and create FAQs (upsertFaq), question bundles (upsertQaPackage), and
// the questions the virtual agent could not answer.
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
const Q_UNANSWERED = `query StaffUnanswered($after: String) { unansweredQuestions(first: 20, after: $after) {
  edges { node { id text closestFaqId confidence at } } pageInfo { hasNextPage endCursor } totalCount } }`;

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

/** Opens the FAQ editor: `f` null for a new one; `seed` prefills a new one's question. */
export function openForm(f, seed = '') {
  const card = $('#kbFormCard');
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
  $('#kbCancel').addEventListener('click', () => { card.classList.add('hidden'); card.innerHTML = ''; });
  $('#kbForm').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    busy($('#kbSave'), async () => {
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
      const i = kb.results.findIndex((x) => x.id === saved.id);
      if (i >= 0) kb.results[i] = saved; else kb.results.unshift(saved);
      drawResults();
      openForm(saved);
      toast(`问答已保存（${saved.id}）`, 'ok');
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

// ---- 未解答问题 ------------------------------------------------------------------------------

const un = { items: [], cursor: null, hasNext: false, total: null };

export async function initUnanswered(context) {
  ctx = context;
  $('#panel-unanswered').innerHTML = `<div class="card">
    <div class="row"><h2 class="grow">智能客服未能回答的问题</h2>
      <button class="small" id="unRefresh" data-test="unanswered-refresh">刷新</button></div>
    <div class="small muted" id="unTotal"></div>
    <ul class="list" id="unList" data-test="unanswered-list"></ul>
    <div class="more hidden" id="unMoreBox"><button class="small" id="unMore" data-test="unanswered-load-more">加载更多</button></div>
  </div>`;
  $('#unRefresh').addEventListener('click', () => run(() => loadUnanswered(true)));
  $('#unMore').addEventListener('click', (e) => busy(e.target, () => loadUnanswered(false)));
  await run(() => loadUnanswered(true));
}

async function loadUnanswered(reset) {
  const d = await gql(Q_UNANSWERED, { after: reset ? null : un.cursor });
  const c = d.unansweredQuestions;
  const nodes = c.edges.map((e) => e.node);
  un.items = reset ? nodes : un.items.concat(nodes);
  un.cursor = c.pageInfo.endCursor;
  un.hasNext = c.pageInfo.hasNextPage;
  un.total = c.totalCount ?? null;
  const ul = $('#unList');
  $('#unMoreBox').classList.toggle('hidden', !un.hasNext);
  $('#unTotal').textContent = un.total != null ? `共 ${un.total} 条` : '';
  if (!un.items.length) {
    ul.innerHTML = '<li class="empty">暂无未解答问题</li>';
    return;
  }
  ul.innerHTML = un.items.map((q) => `<li data-test="unanswered-item" data-id="${esc(q.id)}">
    <div class="row"><span class="grow">${esc(q.text)}</span>
      <span class="small muted">${esc(fmtTime(q.at))}</span>
      <button class="small" data-test="unanswered-to-faq" data-id="${esc(q.id)}">新建问答</button></div>
    <div class="small muted">置信度 ${(q.confidence * 100).toFixed(0)}%${q.closestFaqId ? ` · 最接近：<button class="link small" data-faq="${esc(q.closestFaqId)}">${esc(q.closestFaqId)}</button>` : ''}</div>
  </li>`).join('');
  ul.querySelectorAll('[data-test="unanswered-to-faq"]').forEach((b) => b.addEventListener('click', async () => {
    const q = un.items.find((x) => x.id === b.dataset.id);
    ctx.showTab('kb');
    await waitFor(() => $('#kbFormCard'));
    openForm(null, q?.text || '');
  }));
  ul.querySelectorAll('[data-faq]').forEach((b) => b.addEventListener('click', () => run(async () => {
    const d2 = await gql(Q_FAQ, { id: b.dataset.faq });
    if (!d2.faq) { toast('该问答已不存在', 'error', 'NOT_FOUND'); return; }
    ctx.showTab('kb');
    await waitFor(() => $('#kbFormCard'));
    openForm(d2.faq);
  })));
}

async function waitFor(fn, ms = 3000) {
  const t0 = Date.now();
  while (!fn() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 50));
}
