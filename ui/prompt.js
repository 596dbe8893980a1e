// A form for what the daemon asks for (API key, client credentials). The
// values go to the daemon through a Tauri command, never through a URL.
const invoke = window.__TAURI__.core.invoke;
let request = null;

function show(el, html) { document.getElementById(el).replaceChildren(...html); }

function link(url) {
  const a = document.createElement('a');
  a.href = '#';
  a.textContent = url;
  a.addEventListener('click', (e) => { e.preventDefault(); invoke('open_external', { url }); });
  return a;
}

async function load() {
  request = await invoke('prompt_request');
  document.getElementById('title').textContent = `Connect ${request.display_name}`;
  show('intro', [document.createTextNode(`Connection ${request.connection}. The values go straight to the Authsome daemon on this machine and are stored encrypted.`)]);
  if (request.docs_url) show('docs', [document.createTextNode('Get it at '), link(request.docs_url)]);
  if (request.callback_url) {
    const c = document.createElement('code');
    c.textContent = request.callback_url;
    show('callback', [document.createTextNode('Register this callback URL with the provider: '), c]);
  }
  const fields = document.getElementById('fields');
  for (const f of request.fields) {
    const label = document.createElement('label');
    label.htmlFor = f.name;
    label.textContent = f.label;
    const input = document.createElement('input');
    input.id = f.name;
    input.name = f.name;
    input.type = f.secret ? 'password' : 'text';
    input.required = !f.optional;
    input.dataset.pattern = f.pattern || '';
    input.dataset.hint = f.hint || '';
    fields.append(label, input);
    if (f.hint) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = f.hint;
      fields.append(p);
    }
  }
  const first = fields.querySelector('input');
  if (first) first.focus();
}

document.getElementById('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const values = {};
  for (const input of document.querySelectorAll('#fields input')) {
    const v = input.value.trim();
    if (input.dataset.pattern && v && !(new RegExp(input.dataset.pattern)).test(v)) {
      document.getElementById('error').textContent = input.dataset.hint || 'That value does not have the expected format.';
      input.focus();
      return;
    }
    values[input.name] = v;
  }
  document.getElementById('save').disabled = true;
  try {
    await invoke('submit_prompt', { values });
  } catch (err) {
    document.getElementById('error').textContent = err.message || String(err);
    document.getElementById('save').disabled = false;
  }
});
document.getElementById('cancel').addEventListener('click', () => invoke('cancel_prompt'));
load().catch((e) => { document.getElementById('error').textContent = e.message || String(e); });
