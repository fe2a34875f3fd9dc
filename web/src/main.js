// The dashboard's entry point: sign-in (one-time code from the URL fragment, or a pasted
// token), the view switcher and period buttons, the Report Refresh Date, and errors shown as
// plain sentences.

import * as api from './api.js';
import * as views from './views.js';

const $ = (id) => document.getElementById(id);
const state = { view: 'activations', period: 'D7', tenant: null };

function showAlert(error) {
  const box = $('alert');
  box.replaceChildren();
  const p = document.createElement('p');
  p.textContent = error.message;
  box.append(p);
  if (error.detail) {
    const d = document.createElement('p');
    d.className = 'detail';
    d.textContent = error.detail;
    box.append(d);
  }
  box.dataset.status = String(error.status ?? '');
  box.hidden = false;
}

function clearAlert() {
  $('alert').hidden = true;
  $('alert').replaceChildren();
}

function showSignin() {
  $('dashboard').hidden = true;
  $('signout').hidden = true;
  $('tenant').hidden = true;
  $('refresh').hidden = true;
  $('loading').hidden = true;
  $('signin').hidden = false;
}

function handleError(e) {
  if (!(e instanceof api.ApiError)) {
    console.error(e);
    e = new api.ApiError(0, `Something went wrong in the dashboard (${e.message}). Reload the page; if it happens again, report it.`);
  }
  showAlert(e);
  if (e.status === 401) showSignin();
}

window.addEventListener('rr-error', (ev) => handleError(ev.detail));

function setRefresh(date) {
  $('refresh-date').textContent = date || 'none yet';
  $('refresh').hidden = false;
}

async function render() {
  const root = $('view');
  $('period').hidden = state.view === 'activations';
  for (const b of document.querySelectorAll('[data-view]')) {
    if (b.dataset.view === state.view) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  for (const b of document.querySelectorAll('[data-period]')) {
    b.setAttribute('aria-pressed', String(b.dataset.period === state.period));
  }
  root.setAttribute('aria-busy', 'true');
  try {
    let refresh;
    if (state.view === 'activations') refresh = await views.activations(root);
    else if (state.view === 'active') refresh = await views.activeUsers(root, state.period);
    else refresh = await views.userDetail(root, state.period);
    clearAlert();
    const empty = !refresh;
    $('empty').hidden = !empty;
    root.hidden = empty;
    setRefresh(refresh);
    document.body.dataset.ready = `${state.view}-${state.period}`;
  } catch (e) {
    handleError(e);
    document.body.dataset.ready = `error-${e.status ?? ''}`;
  } finally {
    root.removeAttribute('aria-busy');
  }
}

async function enter(session) {
  state.tenant = session.tenantId;
  $('tenant').textContent = `Tenant ${session.tenantId}`;
  $('tenant').hidden = false;
  $('signin').hidden = true;
  $('signout').hidden = false;
  $('dashboard').hidden = false;
  $('loading').hidden = true;
  await render();
}

async function boot() {
  for (const b of document.querySelectorAll('[data-view]')) {
    b.addEventListener('click', () => {
      state.view = b.dataset.view;
      render();
    });
  }
  for (const b of document.querySelectorAll('[data-period]')) {
    b.addEventListener('click', () => {
      state.period = b.dataset.period;
      render();
    });
  }
  $('signout').addEventListener('click', async () => {
    try {
      await api.signOut();
      clearAlert();
      document.body.dataset.ready = 'signed-out';
      showSignin();
    } catch (e) {
      handleError(e);
    }
  });
  $('token-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const s = await api.signIn({ token: $('token-input').value });
      $('token-input').value = '';
      clearAlert();
      await enter(s);
    } catch (e) {
      if (e.status === 401) {
        e.message =
          'That access token was refused: it is not valid, has expired, or was issued by another server. Get a new one (reportroot token, or your identity provider) and paste it again.';
      }
      handleError(e);
      showSignin();
      document.body.dataset.ready = 'signin-failed';
    }
  });

  $('loading').hidden = false;
  const code = new URLSearchParams(location.hash.slice(1)).get('code');
  try {
    if (code) {
      // Drop the code from the address bar and history before anything else.
      history.replaceState(null, '', '/');
      await enter(await api.signIn({ code }));
      return;
    }
    const s = await api.session();
    if (s.signedIn) await enter(s);
    else {
      showSignin();
      document.body.dataset.ready = 'signin';
    }
  } catch (e) {
    // A refused sign-in code: the server's sentence says why (used, expired, not valid).
    if (code && e.status === 401 && e.serverMessage) e.message = e.serverMessage;
    handleError(e);
    showSignin();
    document.body.dataset.ready = 'signin-failed';
  }
}

boot();
