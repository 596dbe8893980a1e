// An approval window: shows its own run's held request and sends the
// person's answer. The window opens without focus; nothing here takes it.
// The answers stay disabled for a second after it appears, so a click or
// key meant for what was under the pointer cannot answer it.
const invoke = window.__TAURI__.core.invoke;

function show(q) {
  const p = q.pending;
  document.getElementById('title').textContent = `${p.command} asks to use ${p.provider}`;
  document.getElementById('command').textContent = `${p.command} (run ${q.run})`;
  document.getElementById('cwd').textContent = p.cwd || 'not known';
  document.getElementById('uses').textContent = `${p.provider} (${p.connection})`;
  document.getElementById('request').textContent = `${p.method} ${p.host}${p.path}`;
  document.getElementById('asked').textContent = p.asked_by || '--ask';
}

async function answer(a) {
  document.getElementById('error').textContent = '';
  for (const b of document.querySelectorAll('button')) b.disabled = true;
  try {
    await invoke('answer_approval', { answer: a });
  } catch (e) {
    document.getElementById('error').textContent = e.message || String(e);
    for (const b of document.querySelectorAll('button')) b.disabled = false;
  }
}

for (const b of document.querySelectorAll('button[data-answer]')) {
  b.addEventListener('click', () => answer(b.dataset.answer));
}
// Keys answer too (o, r, h, d), once the person has focused the window by
// clicking its notification or the window itself.
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  const b = document.querySelector(`button[data-key="${e.key.toLowerCase()}"]`);
  if (b && !b.disabled) { e.preventDefault(); b.click(); }
});
const answers = document.querySelectorAll('button[data-answer]');
for (const b of answers) b.disabled = true;
setTimeout(() => { for (const b of answers) b.disabled = false; }, 1000);
invoke('approval_request').then(show, (e) => {
  document.getElementById('error').textContent = e.message || String(e);
});
