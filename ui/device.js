// Shows a device code (RFC 8628) with a copy button, until the login ends.
const invoke = window.__TAURI__.core.invoke;

async function poll() {
  const r = await invoke('login_state');
  // The window title names the provider by its display name.
  let heading = `Sign in to ${r.provider}`;
  try {
    const title = await window.__TAURI__.window.getCurrentWindow().title();
    heading = title.replace(/^Authsome: sign in to /, 'Sign in to ');
  } catch (_) {}
  document.getElementById('title').textContent = heading;
  if (r.state === 'device_code') {
    const uri = document.getElementById('uri');
    uri.textContent = r.verification_uri;
    uri.onclick = (e) => { e.preventDefault(); invoke('open_device_page'); };
    document.getElementById('code').textContent = r.user_code;
  } else if (r.state === 'completed') {
    document.getElementById('status').textContent = 'Connected. You can close this window.';
    return;
  } else if (r.state === 'failed') {
    document.getElementById('status').textContent = r.message;
    return;
  }
  setTimeout(poll, 1000);
}

document.getElementById('copy').addEventListener('click', async () => {
  await navigator.clipboard.writeText(document.getElementById('code').textContent);
  document.getElementById('copy').textContent = 'Copied';
});
poll();
