// Main window: connections, providers and recent audit events, all read
// from the daemon through Tauri commands.
const invoke = window.__TAURI__.core.invoke;
let snapshot = null;

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function button(label, onClick, primary) {
  const b = document.createElement('button');
  b.textContent = label;
  if (primary) b.className = 'primary';
  b.addEventListener('click', onClick);
  return b;
}

async function act(command, args) {
  document.getElementById('error').textContent = '';
  try {
    await invoke(command, args);
    await refresh();
  } catch (e) {
    document.getElementById('error').textContent = e.message || String(e);
  }
}

// "in 58 min", "3 h ago": a time in words; the exact time shows on hover.
function inWords(iso) {
  if (!iso) return '-';
  const secs = Math.round((new Date(iso) - new Date()) / 1000);
  const a = Math.abs(secs);
  const span = a < 60 ? `${a} s` : a < 3600 ? `${Math.floor(a / 60)} min` : a < 172800 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86400)} days`;
  return secs >= 0 ? `in ${span}` : `${span} ago`;
}

const ICONS = { connected: '●', expired: '◐', invalid: '✕', configured: '○', available: '○' };

function stateCell(c) {
  const td = document.createElement('td');
  td.className = 'status-' + c.status;
  td.textContent = `${ICONS[c.status] || '•'} ${c.status}`;
  if (c.last_error && (c.status === 'expired' || c.status === 'invalid')) {
    const why = document.createElement('div');
    why.className = 'muted';
    why.textContent = c.last_error;
    td.append(why);
  }
  return td;
}

function expiryCell(c) {
  const td = cell(c.expires_at ? (new Date(c.expires_at) < new Date() ? `expired ${inWords(c.expires_at)}` : inWords(c.expires_at)) : '-');
  if (c.expires_at) td.title = new Date(c.expires_at).toLocaleString();
  return td;
}

// The providers people connect first, offered when nothing is connected.
const COMMON = ['github', 'openai', 'anthropic', 'google-drive', 'linear', 'slack'];

function render() {
  const conns = document.querySelector('#connections tbody');
  conns.replaceChildren();
  let connected = 0;
  for (const p of snapshot.list.providers) {
    for (const c of p.connections) {
      if (c.status === 'connected') connected++;
      const tr = document.createElement('tr');
      tr.append(cell(p.display_name), cell(c.connection), stateCell(c), expiryCell(c));
      const td = document.createElement('td');
      td.className = 'row';
      td.append(button('Reconnect', () => act('reconnect', { provider: p.name, connection: c.connection })),
                button('Revoke', () => act('revoke', { provider: p.name, connection: c.connection })));
      tr.append(td);
      conns.append(tr);
    }
  }
  if (!conns.children.length) {
    const tr = document.createElement('tr');
    const td = cell('Nothing is connected yet. Start with one of these, or pick any provider below:', 'muted');
    td.colSpan = 5;
    const row = document.createElement('div');
    row.className = 'row';
    row.style.marginTop = '.5rem';
    for (const name of COMMON) {
      const p = snapshot.list.providers.find((x) => x.name === name);
      if (p) row.append(button(`Connect ${p.display_name}`, () => act('connect', { provider: p.name }), true));
    }
    td.append(row);
    tr.append(td);
    conns.append(tr);
  }
  document.getElementById('summary').textContent =
    `${connected} connected · profile ${snapshot.list.profile} · master key from ${snapshot.key_source} · proxy CA ${snapshot.ca_fingerprint.slice(0, 23)}…`;
  renderProviders();
  document.getElementById('notray').hidden = !snapshot.no_tray_host;
  const audit = document.querySelector('#audit tbody');
  audit.replaceChildren();
  for (const e of snapshot.audit.slice().reverse()) {
    const tr = document.createElement('tr');
    const when = cell(inWords(e.ts));
    when.title = e.ts;
    tr.append(when, cell(e.event), cell(e.provider ? `${e.provider}${e.connection ? ' (' + e.connection + ')' : ''}` : '-'), cell(e.status, e.status === 'failure' ? 'status-invalid' : ''));
    audit.append(tr);
  }
}

function renderProviders() {
  const q = document.getElementById('search').value.trim().toLowerCase();
  const body = document.querySelector('#providers tbody');
  body.replaceChildren();
  for (const p of snapshot.list.providers) {
    if (q && !p.name.includes(q) && !p.display_name.toLowerCase().includes(q)) continue;
    const tr = document.createElement('tr');
    tr.append(cell(p.display_name), cell(p.auth_type), cell(p.flow));
    const td = document.createElement('td');
    td.append(button('Connect', () => act('connect', { provider: p.name }), true));
    tr.append(td);
    body.append(tr);
  }
}

async function refresh() {
  try {
    snapshot = await invoke('snapshot');
    document.getElementById('error').textContent = '';
    render();
  } catch (e) {
    // The window can open before the daemon it hosts is serving: ask again.
    if (e && e.code === 'starting') {
      setTimeout(refresh, 250);
      return;
    }
    document.getElementById('error').textContent = e.message || String(e);
  }
}

document.getElementById('search').addEventListener('input', () => snapshot && renderProviders());
// The autostart switch: an XDG autostart entry, as `authsome tray autostart`.
const autostart = document.getElementById('autostart');
invoke('autostart_state').then((exec) => { autostart.checked = !!exec; }, () => {});
autostart.addEventListener('change', async () => {
  try {
    const exec = await invoke('set_autostart', { on: autostart.checked });
    autostart.checked = !!exec;
  } catch (e) {
    document.getElementById('error').textContent = e.message || String(e);
    autostart.checked = !autostart.checked;
  }
});
refresh();
// Connections and recent events follow the daemon's events, not a timer:
// at most one refresh every 500 ms however many events arrive.
let scheduled = false;
window.__TAURI__.event.listen('daemon-event', (e) => {
  if (scheduled || e.payload.type === 'request') return;
  scheduled = true;
  setTimeout(() => { scheduled = false; refresh(); }, 500);
});
