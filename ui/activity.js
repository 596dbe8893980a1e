// The Activity view: runs, latest first, each with its requests, approvals
// and refusals. It starts from the `activity` command and then follows the
// daemon's events live.
(function () {
  const invoke = window.__TAURI__.core.invoke;
  const MAX_RUNS = 20;
  const MAX_LINES = 100;
  const runs = new Map(); // id -> {id, command, started, ended, exit, lines: []}

  function run(id) {
    if (!runs.has(id)) runs.set(id, { id, command: '', started: '', ended: false, exit: null, lines: [] });
    return runs.get(id);
  }

  function line(r, text, cls) {
    r.lines.push({ text, cls });
    if (r.lines.length > MAX_LINES) r.lines.shift();
  }

  function requestLine(provider, q) {
    return `${q.method} ${q.host}${q.path} → ${q.http_status || '-'} · ${q.bytes} B · ${q.ms} ms${provider ? ' · ' + provider : ''}`;
  }

  // An audit event (the starting point) or a live event.
  function applyAudit(e) {
    const r = run(e.run);
    if (e.event === 'request' && e.request) line(r, requestLine(e.provider, e.request));
    else if (e.event === 'run') { r.ended = true; line(r, `ended: ${e.detail || ''}`, 'muted'); }
    else if (e.event === 'approval') line(r, `${e.provider}: ${e.detail}`, 'status-connected');
    else if (e.event === 'denied_by_policy' || e.event === 'not_allowed') line(r, `${e.event} ${e.provider || ''}: ${e.detail || ''}`, 'status-invalid');
    if (!r.started) r.started = e.ts;
  }

  function applyLive(ev) {
    switch (ev.type) {
      case 'run_started': { const r = run(ev.id); r.command = ev.command; r.started = new Date().toISOString(); runs.delete(ev.id); runs.set(ev.id, r); break; }
      case 'run_ended': { const r = run(ev.id); r.ended = true; r.exit = ev.exit; line(r, `ended: exit ${ev.exit ?? 'unknown'}`, 'muted'); break; }
      case 'request': line(run(ev.run), requestLine(ev.provider, ev.request)); break;
      case 'approval_pending': { const p = ev.pending; line(run(ev.run), `WAITING: ${p.method} ${p.host}${p.path} for ${p.provider} (${p.asked_by || '--ask'})`, 'status-expired'); break; }
      case 'approval_withdrawn': line(run(ev.run), `${ev.provider}: no answer; nothing waits now`, 'muted'); break;
      case 'approval_decided': line(run(ev.run), `${ev.provider}: ${ev.allowed ? 'allowed ' + ev.scope : 'denied'}`, ev.allowed ? 'status-connected' : 'status-invalid'); break;
      default: return;
    }
    render();
  }

  function render() {
    const box = document.getElementById('activity');
    box.replaceChildren();
    const ordered = [...runs.values()].reverse().slice(0, MAX_RUNS);
    if (!ordered.length) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = 'No runs yet.';
      box.append(p);
      return;
    }
    for (const r of ordered) {
      const h = document.createElement('h3');
      h.textContent = `${r.command || 'run'} · ${r.id}${r.ended ? '' : ' · live'}`;
      box.append(h);
      const ul = document.createElement('ul');
      for (const l of r.lines) {
        const li = document.createElement('li');
        li.textContent = l.text;
        if (l.cls) li.className = l.cls;
        ul.append(li);
      }
      box.append(ul);
    }
  }

  async function start() {
    try {
      const a = await invoke('activity');
      for (const e of a.events) applyAudit(e);
      // Live runs, latest first: put them last in the map so they show first.
      for (const r of a.runs.slice().reverse()) {
        const x = run(r.id);
        x.command = r.command;
        runs.delete(r.id);
        runs.set(r.id, x);
      }
      render();
    } catch (e) {
      document.getElementById('error').textContent = e.message || String(e);
    }
    window.__TAURI__.event.listen('daemon-event', (e) => applyLive(e.payload));
  }
  start();
})();
