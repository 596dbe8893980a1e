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

function render() {
  const conns = document.querySelector('#connections tbody');
  conns.replaceChildren();
  let connected = 0;
  for (const p of snapshot.list.providers) {
    for (const c of p.connections) {
      if (c.status === 'connected') connected++;
      const tr = document.createElement('tr');
      tr.append(cell(p.display_name), cell(c.connection), cell(c.status, 'status-' + c.status), cell(c.expires_at || '-'));
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
    tr.append(cell('No connections yet: connect a provider below.', 'muted'));
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
    tr.append(cell(e.ts), cell(e.event), cell(e.provider ? `${e.provider}${e.connection ? ' (' + e.connection + ')' : ''}` : '-'), cell(e.status, e.status === 'failure' ? 'status-invalid' : ''));
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
    render();
  } catch (e) {
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
