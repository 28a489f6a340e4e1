// The development sign-in page (/login): mints a token with POST /login and goes back.
import { setToken } from '/js/graphql.js';

const form = document.getElementById('form');
const role = document.getElementById('role');
const err = document.getElementById('err');
const params = new URLSearchParams(location.search);
if (params.get('role')) role.value = params.get('role');
const syncRole = () => document.getElementById('tinRow').classList.toggle('hidden', role.value !== 'taxpayer');
role.addEventListener('change', syncRole);
syncRole();

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  err.textContent = '';
  const body = {
    role: role.value,
    sub: form.sub.value.trim(),
    name: form.name.value.trim(),
    taxpayerId: role.value === 'taxpayer' ? form.taxpayerId.value.trim() : '',
    email: form.email.value.trim(),
  };
  try {
    const res = await fetch('/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok || !data.token) {
      const msg = data.errors?.[0]?.message?.split(' / ')[0];
      err.textContent = msg || '登录失败，请稍后重试';
      return;
    }
    setToken(data.token);
    // Back where the person came from, else the page of their role.
    const next = params.get('next');
    location.href = next && next.startsWith('/') && !next.startsWith('//')
      ? next
      : (body.role === 'taxpayer' ? '/' : '/staff');
  } catch {
    err.textContent = '网络连接失败，请检查网络后重试';
  }
});
