/* Hato admin console: a single-page app on the JSON API of console/API.md.
 *
 * Plain ES2020, no dependencies, no inline handlers or styles (the page runs under a strict
 * Content-Security-Policy). Server data is only ever put in the page with textContent or
 * attributes (the h() builder below); never with innerHTML.
 *
 * Test hooks (stable; tests/console/e2e.py relies on the ones marked *):
 *   Every form #X has a submit button #X-submit, an error box #X-error (class "error",
 *   role="alert") and a notice box #X-notice (class "notice"); forms repeated per record
 *   carry data-test instead of id (same suffixes). List pages have a message box #P-error /
 *   #P-notice for row actions. Table cells carry data-col="<field>".
 *   Shell:      #sidebar, #nav a[data-nav=<page>]*, #me-user*, #me-node, #logout
 *   Login:      #login-form*, #login-user*, #login-password*, #login-form-submit*, #login-form-error*
 *   Dashboard:  #dash-pending, #dash-oldest, #dash-leased, #today-received (…-succeeded,
 *               -failed, -blocked, -valid, -error-rate), img#chart-minutes*, img#chart-reasons,
 *               #daily-table* (tr[data-date], td[data-col=received]*)
 *   Log:        #log-form*, #log-from, #log-to, #log-sender, #log-recipient*, #log-status,
 *               #log-api-data, #log-message-id, #log-form-submit*, #log-table*
 *               (tr[data-id=<message>][data-recipient]*[data-status]), #log-truncated, #log-count
 *   Message:    #message-view*, #msg-id*, #msg-recipients (tr[data-address]), #msg-work, #msg-log
 *   Bounces:    #bounces-form, #bounces-from, #bounces-to, #bounces-recipient, #bounces-reason,
 *               #bounces-table (tr[data-id])
 *   Blocks:     #blocks-search-form, #blocks-q, #blocks-table* (tr[data-address]*,
 *               button[data-test=unblock]*), #blocks-error, #block-form*, #block-address*,
 *               #block-reason, #block-form-submit*, #block-form-error*, a#blocks-csv
 *   API users:  #api-user-form*, #api-user-name*, #api-user-form-error*, #api-user-key (box),
 *               #api-user-key-value* (the key), #api-users-table* (tr[data-name]*,
 *               button[data-test=rotate|delete])
 *   SMTP:       #smtp-user-form, #smtp-user-name, #smtp-user-password, #smtp-user-secret-value,
 *               #smtp-users-table (tr[data-name]), #allowed-ip-form*, #allowed-ip-network*,
 *               #allowed-ip-form-error*, #allowed-ips-table* (tr[data-name=<network>]*)
 *   Domains:    #domain-form*, #domain-name*, #domain-algorithm, #domain-selector,
 *               #domain-form-error*, #bounce-domain, #domains-list* (.domain[data-name]*,
 *               table.records, button[data-test=check-dns|delete], table.dns-check
 *               tr[data-name][data-ok])
 *   Webhooks:   #webhook-form, #webhook-name, #webhook-url, #webhook-event-<kind>,
 *               #webhook-format, #webhook-auth-kind, #webhook-auth-user, #webhook-auth-password,
 *               #webhook-auth-token, #webhook-auth-key, #webhook-secret, #webhooks-list
 *               (.webhook[data-name], button[data-test=test|delete], .test-result,
 *               form[data-test=inbound-form] with [name=filter] [name=matches],
 *               table.inbound tr[data-name=<matches>] button[data-test=remove-inbound])
 *   Auto-block: #autoblock-form, #autoblock-mode, #autoblock-hour, #autoblock-watch-days,
 *               #autoblock-rules (tr[data-name=<reason>], #autoblock-<reason>-enabled,
 *               #autoblock-<reason>-threshold)
 *   Retention:  #retention-form*, #retention-current*, #retention-days*, #retention-forever*,
 *               #retention-form-error*
 *   Console:    #console-user-form, #console-user-name, #console-user-password,
 *               #console-users-table (tr[data-name]), #password-form, #password-current,
 *               #password-new
 *   Audit:      #audit-table, #audit-refresh
 *   Cluster:    #cluster-table* (tr[data-id], td[data-col=health]*), #node-form, #node-id,
 *               #node-raft, #node-http, button[data-test=remove]
 */
'use strict';

// ---------------------------------------------------------------------------------- state

const S = {
  csrf: null, // from login / GET /api/me; sent as X-CSRF-Token on every non-GET request
  me: null, // {user, node_id}
  timers: [], // intervals of the current view, cleared on navigation
  logSearch: null, // last delivery-log search, restored when coming back from a message
};

const STATUSES = ['queued', 'succeeded', 'failed', 'deferred', 'blocked'];
const REASONS = {
  userunknown: 'Mailbox does not exist',
  hostunknown: 'Domain does not exist',
  hasmoved: 'Address has moved',
  mailboxfull: 'Mailbox is full',
  filtered: 'Refused by the recipient\u2019s filter',
  rejected: 'Sender rejected',
  spamdetected: 'Detected as spam',
  securityerror: 'Authentication / security error',
  expired: 'Gave up retrying',
  suspend: 'Mailbox suspended',
  mesgtoobig: 'Message too big',
  norelaying: 'Relaying denied',
  systemerror: 'Remote system error',
  networkerror: 'Network error',
  notaccept: 'Domain accepts no mail',
  onhold: 'On hold (undecided)',
  undefined: 'Could not be classified',
};

// ---------------------------------------------------------------------------------- DOM

const $ = (sel, root = document) => root.querySelector(sel);

/** h('tag', {attr: value, class, text, onclick: fn, value, checked}, ...children) */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  let value;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') value = v;
    else if (k === 'checked' || k === 'disabled') el[k] = true;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  if (value !== undefined) el.value = value; // after children, so <select> has its options
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

const td = (col, ...kids) => h('td', { 'data-col': col }, ...kids);
/** A cell that takes the rest of the row's width and cuts its text with an ellipsis. */
const tdFill = (col, text) => h('td', { 'data-col': col, class: 'fill', title: text || '' }, orDash(text));
const mono = (text) => h('span', { class: 'mono' }, text);
const muted = (text) => h('span', { class: 'muted' }, text);

function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || text}` }, text);
}

function table(id, cols, rows, empty = 'Nothing here yet.', cls = '') {
  const attrs = { class: `table ${cls}` };
  if (id) attrs.id = id;
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
      h('tbody', null, rows.length ? rows
        : h('tr', { class: 'empty' }, h('td', { colspan: cols.length }, empty)))));
}

function card(title, ...kids) {
  const head = Array.isArray(title) ? title : [title];
  return h('section', { class: 'card' },
    title && h('div', { class: 'card-head' }, h('h2', null, head[0]), head.slice(1)), kids);
}

function pageHead(title, sub, ...actions) {
  return h('header', { class: 'page-head' },
    h('div', null, h('h1', null, title), sub && h('p', { class: 'sub' }, sub)),
    h('div', { class: 'page-actions' }, actions));
}

/** A labelled input. */
function field(label, control, hint, cls = '') {
  return h('label', { class: `field ${cls}` }, h('span', { class: 'label' }, label), control,
    hint && h('span', { class: 'hint' }, hint));
}

function input(id, name, attrs = {}) {
  return h('input', { id, name, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
}

function select(id, name, options, value) {
  return h('select', { id, name, value },
    options.map((o) => (Array.isArray(o) ? h('option', { value: o[0] }, o[1]) : h('option', { value: o }, o))));
}

/** Error and notice boxes; id (or data-test) prefix P gives P-error and P-notice. */
function msgBox(id, test) {
  const a = (suffix) => (id ? { id: id + suffix } : { 'data-test': test && test + suffix });
  const err = h('div', { class: 'error', role: 'alert', hidden: true, ...a('-error') });
  const note = h('div', { class: 'notice', role: 'status', hidden: true, ...a('-notice') });
  return {
    el: h('div', { class: 'msgs' }, err, note),
    error(e) {
      if (e && e.silent) return;
      note.hidden = true;
      err.textContent = e instanceof Error ? e.message : String(e);
      err.hidden = false;
    },
    notice(text, warn = false) {
      err.hidden = true;
      note.textContent = text;
      note.classList.toggle('warn', warn);
      note.hidden = false;
    },
    clear() { err.hidden = true; note.hidden = true; },
  };
}

/**
 * A form that reports to its own boxes: while `onSubmit(form)` runs the button is disabled;
 * a string it returns is shown as a notice; an error is shown (inputs are kept) and the input
 * named by the server's `field` is marked.
 */
function form(id, kids, onSubmit, { submit = 'Save', cls = '', test = null, danger = false } = {}) {
  const msg = msgBox(id, test);
  const btnAttrs = { type: 'submit', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}` };
  if (id) btnAttrs.id = id + '-submit'; else btnAttrs['data-test'] = test + '-submit';
  const btn = h('button', btnAttrs, submit);
  const attrs = { class: `form ${cls}`, novalidate: true };
  if (id) attrs.id = id; else attrs['data-test'] = test;
  const f = h('form', attrs, h('div', { class: 'form-fields' }, kids, h('div', { class: 'form-actions' }, btn)), msg.el);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (btn.disabled) return;
    msg.clear();
    for (const x of f.querySelectorAll('.invalid')) { x.classList.remove('invalid'); x.removeAttribute('aria-invalid'); }
    btn.disabled = true;
    f.setAttribute('aria-busy', 'true');
    try {
      const note = await onSubmit(f);
      if (note) msg.notice(note);
    } catch (e) {
      msg.error(e);
      const bad = e && e.field && f.querySelector(`[name="${CSS.escape(e.field)}"]`);
      if (bad) { bad.classList.add('invalid'); bad.setAttribute('aria-invalid', 'true'); }
    } finally {
      btn.disabled = false;
      f.removeAttribute('aria-busy');
    }
  });
  f.msg = msg;
  return f;
}

/** A row action: optional confirm(), disabled while running, reports to `msg`. */
function actionBtn(label, attrs, confirmText, run, msg) {
  const b = h('button', { type: 'button', class: 'btn btn-small', ...attrs }, label);
  b.addEventListener('click', async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    b.disabled = true;
    msg.clear();
    try {
      const note = await run();
      if (note) msg.notice(note);
    } catch (e) {
      msg.error(e);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** A highlighted box showing a secret once, with a copy button. */
function secretBox(id, title, value, note = 'Copy it now: it is not shown again.') {
  const copy = h('button', { type: 'button', id: id + '-copy', class: 'btn btn-small' }, 'Copy');
  copy.addEventListener('click', () => copyText(value, copy));
  return h('div', { id, class: 'secret', role: 'status' },
    h('div', { class: 'secret-title' }, title),
    h('div', { class: 'secret-row' }, h('code', { id: id + '-value', class: 'secret-value' }, value), copy),
    h('p', { class: 'hint' }, note));
}

function copyButton(text) {
  const b = h('button', { type: 'button', class: 'btn btn-tiny', title: 'Copy' }, 'Copy');
  b.addEventListener('click', () => copyText(text, b));
  return b;
}

async function copyText(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) { // no clipboard API (or no permission): the old way
    const ta = h('textarea', { class: 'offscreen', readonly: true }, text);
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  btn.textContent = 'Copied';
  setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
}

function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// ---------------------------------------------------------------------------------- format

const pad = (n) => String(n).padStart(2, '0');

/** Local time, `YYYY-MM-DD HH:MM:SS`. */
function fmtTime(ms) {
  if (ms == null) return '\u2014';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtAge(ms) {
  if (ms == null) return '\u2014';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${m % 60}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

const fmtNum = (n) => (n == null ? '\u2014' : Number(n).toLocaleString());
const fmtPct = (r) => (r == null ? '\u2014' : `${(r * 100).toFixed(r > 0 && r < 0.1 ? 2 : 1)}%`);
const fmtBytes = (n) => (n == null ? '\u2014' : n < 1024 ? `${n} B`
  : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
const orDash = (v) => (v == null || v === '' ? '\u2014' : v);

/** A `datetime-local` value as ms since the epoch ('' when empty). */
function localToMs(v) {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : '';
}

/** A number input's value for the server: a number, or the raw text for it to reject. */
function num(v) {
  const t = String(v).trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

// ---------------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

const enc = encodeURIComponent;

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** fetch + JSON both ways; non-2xx throws ApiError with the server's `error` text. */
async function api(method, path, body) {
  const opt = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = S.csrf || '';
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opt);
  } catch (e) {
    throw new ApiError(0, `Cannot reach the server (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch (_) { data = null; }
  if (!res.ok) {
    const msg = (data && data.error) || `${res.status} ${res.statusText || 'error'}`;
    const err = new ApiError(res.status, msg, data && data.field);
    if (res.status === 401 && path !== '/api/login') {
      // The session is gone: back to the login form (keeping the current address).
      err.silent = true;
      S.me = null;
      S.csrf = null;
      showLogin(msg === 'not logged in' ? '' : msg);
    }
    throw err;
  }
  if (data === null) throw new ApiError(res.status, 'The server sent an answer that is not JSON.');
  return data;
}

// ---------------------------------------------------------------------------------- routing

const NAV = [
  ['Mail', [['dashboard', 'Dashboard'], ['log', 'Delivery log'], ['bounces', 'Bounces'], ['blocks', 'Block list']]],
  ['Settings', [['settings/api-users', 'API users'], ['settings/smtp', 'SMTP access'],
    ['settings/domains', 'Sending domains'], ['settings/webhooks', 'Webhooks'],
    ['settings/autoblock', 'Auto-block rules'], ['settings/retention', 'Retention'],
    ['settings/console-users', 'Console users']]],
  ['System', [['audit', 'Audit log'], ['cluster', 'Cluster']]],
];

// [pattern, view, nav key, title]
const ROUTES = [
  [/^\/dashboard$/, viewDashboard, 'dashboard', 'Dashboard'],
  [/^\/log$/, viewLog, 'log', 'Delivery log'],
  [/^\/message\/(.+)$/, viewMessage, 'log', 'Message'],
  [/^\/bounces$/, viewBounces, 'bounces', 'Bounces'],
  [/^\/blocks$/, viewBlocks, 'blocks', 'Block list'],
  [/^\/settings\/api-users$/, viewApiUsers, 'settings/api-users', 'API users'],
  [/^\/settings\/smtp$/, viewSmtp, 'settings/smtp', 'SMTP access'],
  [/^\/settings\/domains$/, viewDomains, 'settings/domains', 'Sending domains'],
  [/^\/settings\/webhooks$/, viewWebhooks, 'settings/webhooks', 'Webhooks'],
  [/^\/settings\/autoblock$/, viewAutoblock, 'settings/autoblock', 'Auto-block rules'],
  [/^\/settings\/retention$/, viewRetention, 'settings/retention', 'Retention'],
  [/^\/settings\/console-users$/, viewConsoleUsers, 'settings/console-users', 'Console users'],
  [/^\/audit$/, viewAudit, 'audit', 'Audit log'],
  [/^\/cluster$/, viewCluster, 'cluster', 'Cluster'],
];

/** Run `fn` every `ms` while the current view is shown. */
function every(ms, fn) {
  S.timers.push(setInterval(fn, ms));
}

function stopTimers() {
  for (const t of S.timers) clearInterval(t);
  S.timers = [];
}

function route() {
  stopTimers();
  const path = location.hash.replace(/^#/, '') || '/dashboard';
  for (const [re, view, nav, title] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.nav === nav);
      if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    document.title = `${title} \u00b7 Hato`;
    const main = $('#main');
    main.replaceChildren();
    main.dataset.view = nav;
    window.scrollTo(0, 0);
    let args;
    try { args = m.slice(1).map(decodeURIComponent); } catch (_) { args = m.slice(1); }
    view(main, ...args);
    return;
  }
  location.replace('#/dashboard');
}

// ---------------------------------------------------------------------------------- shell

function logo() {
  return h('span', { class: 'logo', 'aria-hidden': 'true' }, 'H');
}

function showApp() {
  const nav = h('nav', { id: 'nav', 'aria-label': 'Console' },
    NAV.map(([group, items]) => [
      h('div', { class: 'nav-group' }, group),
      items.map(([key, label]) => h('a', { href: `#/${key}`, 'data-nav': key }, label)),
    ]));
  const logout = h('button', { type: 'button', id: 'logout', class: 'btn btn-small btn-ghost' }, 'Log out');
  logout.addEventListener('click', async () => {
    logout.disabled = true;
    try { await api('POST', '/api/logout'); } catch (_) { /* logged out either way */ }
    S.me = null;
    S.csrf = null;
    showLogin();
  });
  const sidebar = h('aside', { id: 'sidebar' },
    h('div', { class: 'brand' }, logo(), h('span', null, 'Hato'), h('span', { class: 'brand-sub' }, 'console')),
    nav,
    h('div', { class: 'me' },
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, (S.me.user || '?').slice(0, 1).toUpperCase()),
      h('div', { class: 'me-text' },
        h('div', { id: 'me-user', class: 'me-user' }, S.me.user),
        h('div', { id: 'me-node', class: 'me-node' }, `node ${orDash(S.me.node_id)}`)),
      logout));
  $('#app').replaceChildren(h('div', { class: 'shell' }, sidebar, h('main', { id: 'main' })));
  route();
}

function showLogin(reason = '') {
  stopTimers();
  if (document.getElementById('login-form')) return;
  const user = input('login-user', 'user', { autocomplete: 'username', required: true });
  const pw = input('login-password', 'password', { type: 'password', autocomplete: 'current-password', required: true });
  const f = form('login-form', [field('User', user), field('Password', pw)], async () => {
    const r = await api('POST', '/api/login', { user: user.value.trim(), password: pw.value });
    S.csrf = r.csrf;
    S.me = { user: r.user, node_id: r.node_id };
    try { // node id (and a fresh token) from /api/me
      const me = await api('GET', '/api/me');
      S.me = { user: me.user, node_id: me.node_id };
      S.csrf = me.csrf || S.csrf;
    } catch (_) { /* keep what login said */ }
    showApp();
  }, { submit: 'Log in', cls: 'form-stack' });
  if (reason) f.msg.error(reason);
  $('#app').replaceChildren(h('div', { class: 'login-page' },
    h('div', { class: 'login-card' },
      h('div', { class: 'brand brand-login' }, logo(), h('span', null, 'Hato'), h('span', { class: 'brand-sub' }, 'console')),
      h('h1', null, 'Sign in'),
      h('p', { class: 'sub' }, 'Administer your Hato mail cluster.'),
      f)));
  user.focus();
}

async function boot() {
  window.addEventListener('hashchange', () => { if (S.me) route(); });
  try {
    const me = await api('GET', '/api/me');
    S.me = { user: me.user, node_id: me.node_id };
    S.csrf = me.csrf;
    showApp();
  } catch (e) {
    if (e.silent) return; // 401: the login form is shown
    const retry = h('button', { type: 'button', class: 'btn btn-primary', id: 'boot-retry' }, 'Retry');
    retry.addEventListener('click', () => location.reload());
    $('#app').replaceChildren(h('div', { class: 'login-page' }, h('div', { class: 'login-card' },
      h('h1', null, 'The console is not available'),
      h('p', { class: 'error', role: 'alert' }, e.message), retry)));
  }
}

// ---------------------------------------------------------------------------------- dashboard

function viewDashboard(main) {
  const msg = msgBox('dashboard');
  const tile = (id, label, cls = '') => h('div', { class: `tile ${cls}` },
    h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value', id }, '\u2014'));
  const served = h('span', { id: 'dash-served' });
  const minutes = h('img', { id: 'chart-minutes', class: 'chart', alt: 'Messages per minute over the last hour' });
  const reasons = h('img', { id: 'chart-reasons', class: 'chart', alt: 'Bounce reasons over the last 7 days' });
  const daily = h('div', null, muted('Loading\u2026'));
  main.append(
    pageHead('Dashboard', served, h('span', { class: 'live' }, h('span', { class: 'live-dot' }), 'Live')),
    msg.el,
    h('div', { class: 'section-label' }, 'Queue'),
    h('div', { class: 'tiles tiles-3' }, tile('dash-pending', 'Pending recipients'),
      tile('dash-oldest', 'Oldest pending'), tile('dash-leased', 'Being delivered now')),
    h('div', { class: 'section-label' }, 'Today (UTC)'),
    h('div', { class: 'tiles tiles-6' }, tile('today-received', 'Received'),
      tile('today-succeeded', 'Succeeded', 'tile-ok'), tile('today-failed', 'Failed', 'tile-bad'),
      tile('today-blocked', 'Blocked', 'tile-grey'), tile('today-valid', 'Valid'),
      tile('today-error-rate', 'Error rate')),
    h('div', { class: 'grid-charts' },
      card('Last 60 minutes', h('div', { class: 'chart-box' }, minutes)),
      card('Bounce reasons \u00b7 7 days', h('div', { class: 'chart-box' }, reasons))),
    card('Daily statistics', daily));

  const set = (id, v) => { const el = document.getElementById(id); if (el) el.textContent = v; };
  async function refresh() {
    const t = Date.now();
    const tz = -new Date().getTimezoneOffset();
    minutes.src = `/charts/minutes.svg?minutes=60&tz=${tz}&t=${t}`;
    reasons.src = `/charts/reasons.svg?days=7&t=${t}`;
    try {
      const [d, s] = await Promise.all([api('GET', '/api/dashboard'), api('GET', '/api/stats/daily?days=14')]);
      const q = d.queue || {};
      set('dash-pending', fmtNum(q.pending));
      set('dash-oldest', q.oldest_ms ? fmtAge(Date.now() - q.oldest_ms) : '\u2014');
      set('dash-leased', fmtNum(q.leased));
      const today = d.today || {};
      for (const k of ['received', 'succeeded', 'failed', 'blocked', 'valid']) set(`today-${k}`, fmtNum(today[k]));
      set('today-error-rate', fmtPct(today.error_rate));
      served.textContent = `Served by node ${orDash(d.node_id)} \u00b7 leader ${orDash(d.leader_id)} \u00b7 updated ${fmtTime(t).slice(11)}`;
      daily.replaceChildren(table('daily-table',
        ['Date', 'Received', 'Succeeded', 'Failed', 'Blocked', 'Valid', 'Error rate'],
        (s.days || []).map((r) => h('tr', { 'data-date': r.date },
          td('date', r.date), td('received', fmtNum(r.received)), td('succeeded', fmtNum(r.succeeded)),
          td('failed', fmtNum(r.failed)), td('blocked', fmtNum(r.blocked)), td('valid', fmtNum(r.valid)),
          td('error_rate', fmtPct(r.error_rate)))),
        'No statistics yet.', 'num-table'));
      msg.clear();
    } catch (e) {
      msg.error(e);
    }
  }
  refresh();
  every(5000, refresh);
}

// ---------------------------------------------------------------------------------- delivery log

function statusSelect(id) {
  return select(id, 'status', [['', 'Any status'], ...STATUSES.map((s) => [s, s])], '');
}

function linkToMessage(id, text) {
  return h('a', { href: `#/message/${enc(id)}`, class: 'msg-link' }, text);
}

/** A clickable row that opens a message (links inside keep working as links). */
function messageRow(id, attrs, ...cells) {
  const tr = h('tr', { class: 'clickable', 'data-id': id, ...attrs }, ...cells);
  tr.addEventListener('click', (e) => {
    if (!e.target.closest('a, button') && id) location.hash = `#/message/${enc(id)}`;
  });
  return tr;
}

function clip(text, cls = 'clip') {
  return h('span', { class: cls, title: text || '' }, orDash(text));
}

function viewLog(main) {
  const prev = S.logSearch || {};
  const inputs = {
    from: input('log-from', 'from', { type: 'datetime-local', value: prev.from || '' }),
    to: input('log-to', 'to', { type: 'datetime-local', value: prev.to || '' }),
    sender: input('log-sender', 'sender', { placeholder: 'part of the address', value: prev.sender || '' }),
    recipient: input('log-recipient', 'recipient', { placeholder: 'part of the address', value: prev.recipient || '' }),
    status: statusSelect('log-status'),
    api_data: input('log-api-data', 'api_data', { placeholder: 'exact value', value: prev.api_data || '' }),
    message_id: input('log-message-id', 'message_id', { placeholder: 'Hato id or Message-ID', value: prev.message_id || '' }),
  };
  inputs.status.value = prev.status || '';
  const results = h('div', { id: 'log-results' });
  const f = form('log-form', [
    field('From', inputs.from), field('To', inputs.to), field('Sender', inputs.sender),
    field('Recipient', inputs.recipient), field('Status', inputs.status), field('API data', inputs.api_data),
    field('Message id', inputs.message_id),
  ], async () => {
    const v = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()]));
    S.logSearch = v;
    const r = await api('GET', '/api/deliveries' + qs({
      ...v, from: localToMs(v.from), to: localToMs(v.to), limit: 100,
    }));
    const items = r.items || [];
    results.replaceChildren(
      h('div', { class: 'result-bar' },
        h('span', { id: 'log-count' }, `${items.length} record${items.length === 1 ? '' : 's'}, newest first`),
        r.truncated && h('span', { id: 'log-truncated', class: 'pill-note' },
          'More records match: only the newest 100 are shown. Narrow the search to see older ones.')),
      table('log-table', ['Time', 'Status', 'From', 'To', 'Subject', 'Reply / detail'],
        items.map((d) => messageRow(d.message,
          { 'data-recipient': d.recipient, 'data-status': d.status, 'data-message-id': d.message_id },
          td('at', linkToMessage(d.message, fmtTime(d.at_ms))), td('status', badge(d.status)),
          td('mail_from', clip(d.mail_from)), td('recipient', clip(d.recipient)),
          td('subject', clip(d.subject)), tdFill('reply', d.reply || d.detail || d.reason))),
        'No deliveries match this search.', 'hover'));
  }, { submit: 'Search', cls: 'form-grid' });
  main.append(pageHead('Delivery log', 'One record per recipient and attempt. Times are local.'),
    card(null, f), h('div', { class: 'card card-flush' }, results));
  f.requestSubmit();
}

// ---------------------------------------------------------------------------------- message detail

function viewMessage(main, id) {
  const msg = msgBox('message');
  const body = h('div', { id: 'message-view' }, muted('Loading\u2026'));
  main.append(pageHead('Message', h('span', { class: 'mono' }, id), h('a', { href: '#/log', class: 'btn btn-ghost', id: 'message-back' }, '\u2190 Delivery log')),
    msg.el, body);
  api('GET', `/api/messages/${enc(id)}`).then((r) => {
    const m = r.meta || {};
    const dl = h('dl', { class: 'meta' });
    const row = (label, value, attrs = {}) => dl.append(h('dt', null, label), h('dd', attrs, value));
    row('Hato id', mono(m.id), { id: 'msg-id' });
    row('Received', fmtTime(m.received_ms));
    row('Via', orDash(m.via));
    row('Source IP', orDash(m.source_ip));
    row('Auth user', orDash(m.auth_user));
    row('API data', orDash(m.api_data));
    row('Envelope from', orDash(m.mail_from), { id: 'msg-mail-from' });
    row('Subject', orDash(m.subject), { id: 'msg-subject' });
    row('Message-ID', mono(orDash(m.message_id)), { id: 'msg-message-id' });
    row('Size', fmtBytes(m.size));
    const rcpts = (m.recipients || []).map((x) => h('tr', { 'data-address': x.address },
      td('address', x.address), td('status', badge(x.status))));
    const work = (r.work || []).map((w) => h('tr', { 'data-address': w.address },
      td('address', w.address), td('attempts', fmtNum(w.attempts)), td('next_at', fmtTime(w.next_at_ms)),
      td('lease', w.lease ? `node ${w.lease.node} until ${fmtTime(w.lease.until_ms)}` : muted('not leased')),
      tdFill('last_reply', w.last_reply)));
    const log = (r.log || []).map((d) => h('tr', { 'data-status': d.status },
      td('at', fmtTime(d.at_ms)), td('recipient', d.recipient), td('status', badge(d.status)),
      td('remote', mono(orDash(d.remote))), td('reply', h('span', { class: 'wrap' }, orDash(d.reply || d.detail))),
      td('reason', d.reason ? badge(d.reason, 'reason') : '\u2014'),
      td('node', d.node == null ? '\u2014' : `node ${d.node}`, d.egress_ip ? h('div', { class: 'muted small mono' }, d.egress_ip) : null)));
    body.replaceChildren(
      card([m.subject || '(no subject)', m.recipients && badge(`${m.recipients.length} recipient${m.recipients.length === 1 ? '' : 's'}`, 'count')], dl),
      h('div', { class: 'grid-2' },
        card('Recipients', table('msg-recipients', ['Address', 'Status'], rcpts, 'No recipients.')),
        card('Queued work', table('msg-work', ['Recipient', 'Attempts', 'Next attempt', 'Lease', 'Last reply'],
          work, 'Nothing queued: every recipient has a final status.'))),
      card('Attempt log', table('msg-log', ['Time', 'Recipient', 'Status', 'Remote host', 'Remote reply', 'Reason', 'Sent by'],
        log, 'No attempts recorded yet.')));
  }).catch((e) => {
    body.replaceChildren();
    msg.error(e);
  });
}

// ---------------------------------------------------------------------------------- bounces

function viewBounces(main) {
  const inputs = {
    from: input('bounces-from', 'from', { type: 'datetime-local' }),
    to: input('bounces-to', 'to', { type: 'datetime-local' }),
    recipient: input('bounces-recipient', 'recipient', { placeholder: 'part of the address' }),
    reason: select('bounces-reason', 'reason', [['', 'Any reason'], ...Object.keys(REASONS)], ''),
  };
  const results = h('div');
  const f = form('bounces-form', [field('From', inputs.from), field('To', inputs.to),
    field('Recipient', inputs.recipient), field('Reason', inputs.reason)], async () => {
    const v = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()]));
    const r = await api('GET', '/api/bounces' + qs({ ...v, from: localToMs(v.from), to: localToMs(v.to), limit: 100 }));
    results.replaceChildren(table('bounces-table', ['Time', 'Recipient', 'Reason', 'Code', 'From', 'Subject', 'Detail'],
      (r.items || []).map((b) => messageRow(b.message, { 'data-recipient': b.recipient },
        td('at', linkToMessage(b.message, fmtTime(b.at_ms))), td('recipient', clip(b.recipient)),
        td('reason', badge(b.reason || 'undefined', 'reason')), td('code', orDash(b.code)),
        td('mail_from', clip(b.mail_from)), td('subject', clip(b.subject)), tdFill('detail', b.detail))),
      'No bounces match this search.', 'hover'));
  }, { submit: 'Search', cls: 'form-grid' });
  main.append(pageHead('Bounces', 'Classified bounces (Sisimai reason names, CMC codes), newest first.'),
    card(null, f), h('div', { class: 'card card-flush' }, results));
  f.requestSubmit();
}

// ---------------------------------------------------------------------------------- blocks

function viewBlocks(main) {
  const msg = msgBox('blocks');
  const list = h('div', null, muted('Loading\u2026'));
  const q = input('blocks-q', 'q', { type: 'search', placeholder: 'Search addresses\u2026' });
  async function load() {
    const r = await api('GET', '/api/blocks' + qs({ q: q.value.trim() }));
    const now = Date.now();
    list.replaceChildren(table('blocks-table', ['Address', 'Reason', 'Code', 'Since', 'Type', 'Active', 'Expires', ''],
      (r.items || []).map((b) => h('tr', { 'data-address': b.address },
        td('address', mono(b.address)),
        td('reason', orDash(b.reason), b.occurred > 1 ? muted(` \u00d7${b.occurred}`) : null),
        td('code', orDash(b.code)),
        td('since', fmtTime(b.at_ms), b.effective_at_ms > now ? h('div', { class: 'muted small' }, `takes effect ${fmtTime(b.effective_at_ms)}`) : null),
        td('auto', b.auto ? badge('auto', 'auto') : badge('manual', 'manual')),
        td('active', b.active ? badge('active', 'on') : badge('inactive', 'off')),
        td('expires', b.expires_at_ms ? fmtTime(b.expires_at_ms) : muted('never')),
        td('actions', actionBtn('Unblock', { 'data-test': 'unblock', 'data-address': b.address, class: 'btn btn-small btn-danger-ghost' },
          `Unblock ${b.address}? Mail to it will be delivered again.`, async () => {
            await api('DELETE', `/api/blocks/${enc(b.address)}`);
            await load();
            return `Unblocked ${b.address}.`;
          }, msg)))),
      q.value.trim() ? 'No blocked address matches.' : 'No address is blocked.', 'hover'));
  }
  const search = form('blocks-search-form', [field('Address contains', q)], load, { submit: 'Search', cls: 'form-inline' });
  q.addEventListener('input', debounce(() => load().catch((e) => search.msg.error(e)), 300));
  const address = input('block-address', 'address', { inputmode: 'email', placeholder: 'user@example.com' });
  const reason = input('block-reason', 'reason', { placeholder: 'optional note' });
  const add = form('block-form', [field('Address', address), field('Reason', reason)], async (f) => {
    const body = { address: address.value.trim() };
    if (reason.value.trim()) body.reason = reason.value.trim();
    await api('POST', '/api/blocks', body);
    f.reset();
    await load();
    return `Blocked ${body.address}.`;
  }, { submit: 'Block address', cls: 'form-inline' });
  main.append(
    pageHead('Block list', 'Mail to a blocked address is never sent. Blocks apply to the whole cluster at once.',
      h('a', { href: '/blocks.csv', id: 'blocks-csv', class: 'btn btn-ghost', download: 'blocks.csv' }, 'Download CSV')),
    card('Block an address', add),
    card(['Blocked addresses'], search, msg.el, list));
  load().catch((e) => msg.error(e));
}

// ---------------------------------------------------------------------------------- settings: credentials

function viewApiUsers(main) {
  const msg = msgBox('api-users');
  const list = h('div', null, muted('Loading\u2026'));
  const secret = h('div', { class: 'secret-slot' });
  const showKey = (r, title) => secret.replaceChildren(secretBox('api-user-key', title, r.key,
    `Use it as api_key together with api_user "${r.name}". Copy it now: it is not shown again.`));
  async function load() {
    const r = await api('GET', '/api/api-users');
    list.replaceChildren(table('api-users-table', ['Name', ''], (r.items || []).map((u) => h('tr', { 'data-name': u.name },
      td('name', mono(u.name)),
      td('actions',
        actionBtn('Rotate key', { 'data-test': 'rotate', 'data-name': u.name },
          `Issue a new key for ${u.name}? The current key stops working.`, async () => {
            const k = await api('POST', `/api/api-users/${enc(u.name)}/key`);
            showKey(k, `New API key for ${k.name}`);
            return `Issued a new key for ${k.name}.`;
          }, msg),
        actionBtn('Delete', { 'data-test': 'delete', 'data-name': u.name, class: 'btn btn-small btn-danger-ghost' },
          `Delete API user ${u.name}? Applications using it can no longer send.`, async () => {
            await api('DELETE', `/api/api-users/${enc(u.name)}`);
            secret.replaceChildren();
            await load();
            return `Deleted ${u.name}.`;
          }, msg)))), 'No API users yet.', 'hover'));
  }
  const name = input('api-user-name', 'name', { placeholder: 'my-app' });
  const f = form('api-user-form', [field('Name', name, 'The api_user value applications send.')], async (f) => {
    const r = await api('POST', '/api/api-users', { name: name.value.trim() });
    f.reset();
    showKey(r, `API key for ${r.name}`);
    await load();
    return `Created API user ${r.name}.`;
  }, { submit: 'Create API user', cls: 'form-inline' });
  main.append(pageHead('API users', 'Credentials for the HTTP API (api_user and api_key).'),
    card('New API user', f, secret), card('API users', msg.el, list));
  load().catch((e) => msg.error(e));
}

function viewSmtp(main) {
  // SMTP AUTH logins
  const umsg = msgBox('smtp-users');
  const users = h('div', null, muted('Loading\u2026'));
  const secret = h('div', { class: 'secret-slot' });
  async function loadUsers() {
    const r = await api('GET', '/api/smtp-users');
    users.replaceChildren(table('smtp-users-table', ['Name', ''], (r.items || []).map((u) => h('tr', { 'data-name': u.name },
      td('name', mono(u.name)),
      td('actions', actionBtn('Delete', { 'data-test': 'delete', 'data-name': u.name, class: 'btn btn-small btn-danger-ghost' },
        `Delete SMTP login ${u.name}?`, async () => {
          await api('DELETE', `/api/smtp-users/${enc(u.name)}`);
          await loadUsers();
          return `Deleted ${u.name}.`;
        }, umsg)))), 'No SMTP logins yet.', 'hover'));
  }
  const uname = input('smtp-user-name', 'name', { placeholder: 'app' });
  const upw = input('smtp-user-password', 'password', { type: 'password', autocomplete: 'new-password', placeholder: 'empty: generate one' });
  const uform = form('smtp-user-form', [field('Login', uname), field('Password', upw)], async (f) => {
    const body = { name: uname.value.trim() };
    if (upw.value) body.password = upw.value;
    const r = await api('POST', '/api/smtp-users', body);
    f.reset();
    secret.replaceChildren(body.password ? null
      : secretBox('smtp-user-secret', `Generated password for ${r.name}`, r.password));
    await loadUsers();
    return `Created SMTP login ${r.name}.`;
  }, { submit: 'Add login', cls: 'form-inline' });

  // Relay without AUTH from these networks
  const imsg = msgBox('allowed-ips');
  const ips = h('div', null, muted('Loading\u2026'));
  async function loadIps() {
    const r = await api('GET', '/api/allowed-ips');
    ips.replaceChildren(table('allowed-ips-table', ['Network', ''], (r.items || []).map((n) => h('tr', { 'data-name': n.network },
      td('network', mono(n.network)),
      td('actions', actionBtn('Delete', { 'data-test': 'delete', 'data-name': n.network, class: 'btn btn-small btn-danger-ghost' },
        `Stop relaying for ${n.network}?`, async () => {
          await api('DELETE', `/api/allowed-ips/${enc(n.network)}`);
          await loadIps();
          return `Removed ${n.network}.`;
        }, imsg)))), 'No network may relay without AUTH.', 'hover'));
  }
  const net = input('allowed-ip-network', 'network', { placeholder: '192.0.2.0/24' });
  const iform = form('allowed-ip-form', [field('Network or address', net, 'IPv4 or IPv6, one address or a CIDR block.')], async (f) => {
    const network = net.value.trim();
    await api('POST', '/api/allowed-ips', { network });
    f.reset();
    await loadIps();
    return `Added ${network}.`;
  }, { submit: 'Allow', cls: 'form-inline' });

  main.append(pageHead('SMTP access', 'Who may hand mail to Hato over SMTP.'),
    h('div', { class: 'grid-2' },
      card('SMTP AUTH logins', uform, secret, umsg.el, users),
      card('Allowed IPs (relay without AUTH)', iform, imsg.el, ips)));
  loadUsers().catch((e) => umsg.error(e));
  loadIps().catch((e) => imsg.error(e));
}

// ---------------------------------------------------------------------------------- settings: domains

function viewDomains(main) {
  const msg = msgBox('domains');
  const list = h('div', { id: 'domains-list' }, muted('Loading\u2026'));
  const bounce = h('span', { id: 'bounce-domain', class: 'mono' });

  function domainCard(d) {
    const cmsg = msgBox(null, 'domain');
    const check = h('div', { class: 'dns-check-slot' });
    const records = table(null, ['Type', 'Name', 'Value'], (d.records || []).map((r) => h('tr', { 'data-name': r.name },
      td('type', badge(r.type, 'type')),
      td('name', h('div', { class: 'copy-cell' }, mono(r.name), copyButton(r.name))),
      td('value', h('div', { class: 'copy-cell' }, h('code', { class: 'record-value' }, r.value), copyButton(r.value))))),
    'No records.', 'records');
    const checkBtn = actionBtn('Check DNS', { 'data-test': 'check-dns', 'data-name': d.domain }, null, async () => {
      const r = await api('GET', `/api/domains/${enc(d.domain)}/check`);
      const checks = r.checks || [];
      check.replaceChildren(h('h3', null, 'DNS check'), table(null, ['Result', 'Name', 'Type', 'Found'],
        checks.map((c) => h('tr', { 'data-name': c.name, 'data-ok': String(!!c.ok) },
          td('ok', c.ok ? badge('ok', 'ok') : badge('missing', 'missing')),
          td('name', mono(c.name)), td('type', c.type),
          td('found',
            (c.found || []).length ? (c.found || []).map((v) => h('code', { class: 'record-value found' }, v)) : muted('nothing found'),
            c.error ? h('div', { class: 'error-text' }, c.error) : null,
            !c.ok && c.expected ? h('div', { class: 'small' }, muted('expected: '), h('code', { class: 'record-value' }, c.expected)) : null))),
        'Nothing to check.', 'dns-check'));
      const bad = checks.filter((c) => !c.ok).length;
      if (bad) cmsg.notice(`${bad} of ${checks.length} records are not published correctly yet.`, true);
      else cmsg.notice('All records are published.');
    }, cmsg);
    const del = actionBtn('Delete', { 'data-test': 'delete', 'data-name': d.domain, class: 'btn btn-small btn-danger-ghost' },
      `Delete sending domain ${d.domain} and its DKIM key? Mail from it will be refused.`, async () => {
        await api('DELETE', `/api/domains/${enc(d.domain)}`);
        await load();
        msg.notice(`Deleted ${d.domain}.`);
      }, cmsg);
    return h('section', { class: 'card domain', 'data-name': d.domain },
      h('div', { class: 'card-head' },
        h('h2', null, d.domain),
        h('div', { class: 'head-badges' }, badge(d.algorithm || '?', 'type'), muted(`selector ${orDash(d.selector)}`)),
        h('div', { class: 'card-actions' }, checkBtn, del)),
      h('p', { class: 'hint' }, 'Publish these records in the domain\u2019s DNS:'),
      records, cmsg.el, check);
  }

  async function load() {
    const r = await api('GET', '/api/domains');
    bounce.textContent = orDash(r.bounce_domain);
    const items = r.items || [];
    list.replaceChildren(...(items.length ? items.map(domainCard)
      : [h('div', { class: 'card empty-card' }, 'No sending domains yet. Add one above.')]));
  }

  const dname = input('domain-name', 'domain', { placeholder: 'shop.example' });
  const alg = select('domain-algorithm', 'algorithm', [['rsa', 'RSA'], ['ed25519', 'Ed25519']], 'rsa');
  const sel = input('domain-selector', 'selector', { placeholder: 'optional' });
  const f = form('domain-form', [field('Domain', dname), field('DKIM algorithm', alg), field('Selector', sel)], async (f) => {
    const body = { domain: dname.value.trim(), algorithm: alg.value };
    if (sel.value.trim()) body.selector = sel.value.trim();
    const d = await api('POST', '/api/domains', body);
    f.reset();
    await load();
    return `Added ${d.domain || body.domain}: publish its DNS records below.`;
  }, { submit: 'Add domain', cls: 'form-inline' });
  main.append(pageHead('Sending domains', h('span', null, 'Mail From these domains is DKIM-signed. Bounce domain: ', bounce)),
    card('Add a sending domain', f), msg.el, list);
  load().catch((e) => msg.error(e));
}

// ---------------------------------------------------------------------------------- settings: webhooks

function viewWebhooks(main) {
  const msg = msgBox('webhooks');
  const formSlot = h('div', null, muted('Loading\u2026'));
  const list = h('div', { id: 'webhooks-list' });
  let built = false;

  function createForm(kinds) {
    const name = input('webhook-name', 'name', { placeholder: 'crm' });
    const url = input('webhook-url', 'url', { type: 'url', placeholder: 'https://example.com/hooks/mail' });
    const events = h('fieldset', { id: 'webhook-events', class: 'checks' }, h('legend', null, 'Events'),
      kinds.map((k) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: 'events', value: k, id: `webhook-event-${k}` }), k)));
    const format = select('webhook-format', 'format', [['form', 'form (CMC default)'], ['json', 'json'], ['multipart', 'multipart (inbound with files)']], 'form');
    const kind = select('webhook-auth-kind', 'auth_kind', [['none', 'None'], ['basic', 'Basic (user + password)'], ['bearer', 'Bearer token'], ['api_key', 'api_key field']], 'none');
    const authUser = input('webhook-auth-user', 'auth_user');
    const authPw = input('webhook-auth-password', 'auth_password', { type: 'password', autocomplete: 'new-password' });
    const authToken = input('webhook-auth-token', 'auth_token');
    const authKey = input('webhook-auth-key', 'auth_key');
    const secret = input('webhook-secret', 'secret', { placeholder: 'optional' });
    const groups = {
      basic: [field('Auth user', authUser), field('Auth password', authPw)],
      bearer: [field('Bearer token', authToken)],
      api_key: [field('api_key', authKey)],
    };
    const sync = () => { for (const [k, els] of Object.entries(groups)) for (const el of els) el.hidden = kind.value !== k; };
    kind.addEventListener('change', sync);
    sync();
    return form('webhook-form', [
      field('Name', name), field('URL', url, null, 'field-wide'), events,
      field('Format', format), field('Authentication', kind), groups.basic, groups.bearer, groups.api_key,
      field('Signing secret', secret, 'HMAC-SHA256 key.'),
    ], async (f) => {
      const body = {
        name: name.value.trim(), url: url.value.trim(),
        events: [...f.querySelectorAll('input[name=events]:checked')].map((c) => c.value), format: format.value,
      };
      if (kind.value === 'basic') body.auth = { kind: 'basic', user: authUser.value, password: authPw.value };
      if (kind.value === 'bearer') body.auth = { kind: 'bearer', token: authToken.value };
      if (kind.value === 'api_key') body.auth = { kind: 'api_key', key: authKey.value };
      if (secret.value.trim()) body.secret = secret.value.trim();
      await api('POST', '/api/webhooks', body);
      f.reset();
      sync();
      await load();
      return `Created webhook ${body.name}.`;
    }, { submit: 'Create webhook', cls: 'form-grid' });
  }

  function hookCard(w) {
    const cmsg = msgBox(null, 'webhook');
    const result = h('div', { class: 'test-result', role: 'status', hidden: true });
    const test = actionBtn('Send test event', { 'data-test': 'test', 'data-name': w.name }, null, async () => {
      result.hidden = true;
      const r = await api('POST', `/api/webhooks/${enc(w.name)}/test`);
      result.className = `test-result ${r.ok ? 'ok' : 'bad'}`;
      result.replaceChildren(badge(r.ok ? 'delivered' : 'failed', r.ok ? 'ok' : 'missing'), ' ', orDash(r.message));
      result.hidden = false;
    }, cmsg);
    const del = actionBtn('Delete', { 'data-test': 'delete', 'data-name': w.name, class: 'btn btn-small btn-danger-ghost' },
      `Delete webhook ${w.name}? Undelivered events for it are dropped.`, async () => {
        await api('DELETE', `/api/webhooks/${enc(w.name)}`);
        await load();
        msg.notice(`Deleted ${w.name}.`);
      }, cmsg);
    const inbound = table(null, ['Filter', 'Mail to', ''], (w.inbound || []).map((r) => h('tr', { 'data-name': r.matches },
      td('filter', mono(r.filter)), td('matches', mono(r.matches)),
      td('actions', actionBtn('Remove', { 'data-test': 'remove-inbound', 'data-name': r.matches, class: 'btn btn-small btn-danger-ghost' },
        `Stop posting mail to ${r.matches}?`, async () => {
          await api('DELETE', `/api/webhooks/${enc(w.name)}/inbound/${enc(r.matches)}`);
          await load();
          msg.notice(`${w.name}: mail to ${r.matches} is no longer posted.`);
        }, cmsg)))), 'No inbound rules: no received mail is posted here.', 'inbound');
    const filter = input(null, 'filter', { placeholder: 'filter name', 'data-test': 'inbound-filter' });
    const matches = input(null, 'matches', { placeholder: 'support@shop.example or shop.example', 'data-test': 'inbound-matches' });
    const addRule = form(null, [field('Filter', filter), field('Mail to (address or domain)', matches)], async () => {
      const rule = { filter: filter.value.trim(), matches: matches.value.trim() };
      await api('POST', `/api/webhooks/${enc(w.name)}/inbound`, rule);
      await load();
      msg.notice(`${w.name}: mail to ${rule.matches} is posted under filter "${rule.filter}".`);
    }, { submit: 'Add rule', cls: 'form-inline', test: 'inbound-form' });
    const failures = (w.failures || []).length ? table(null, ['Events', 'Given up at', 'Attempts', 'Error'],
      w.failures.map((x) => h('tr', null, td('seq', `#${x.first_seq}\u2013#${x.last_seq}`), td('at', fmtTime(x.at_ms)),
        td('attempts', fmtNum(x.attempts)), tdFill('error', x.error))), '', 'failures') : null;
    return h('section', { class: 'card webhook', 'data-name': w.name },
      h('div', { class: 'card-head' },
        h('h2', null, w.name),
        h('div', { class: 'head-badges' }, w.pending ? badge(`${w.pending} pending`, 'deferred') : badge('up to date', 'ok')),
        h('div', { class: 'card-actions' }, test, del)),
      h('div', { class: 'mono url' }, w.url),
      h('dl', { class: 'meta meta-inline' },
        h('dt', null, 'Events'), h('dd', null, (w.events || []).length ? w.events.map((e) => badge(e, 'event')) : muted('none')),
        h('dt', null, 'Format'), h('dd', null, orDash(w.format)),
        h('dt', null, 'Auth'), h('dd', null, orDash(w.auth_kind)),
        h('dt', null, 'Secrets'), h('dd', null, fmtNum(w.secrets)),
        h('dt', null, 'Pending'), h('dd', { 'data-col': 'pending' }, fmtNum(w.pending))),
      result, cmsg.el,
      failures && h('h3', null, 'Recent failures'), failures,
      h('h3', null, 'Inbound rules'), inbound, addRule);
  }

  async function load() {
    const r = await api('GET', '/api/webhooks');
    if (!built) { formSlot.replaceChildren(createForm(r.event_kinds || [])); built = true; }
    const items = r.items || [];
    list.replaceChildren(...(items.length ? items.map(hookCard)
      : [h('div', { class: 'card empty-card' }, 'No webhooks yet.')]));
  }
  main.append(pageHead('Webhooks', 'Delivery events and received mail, posted to your endpoints.'),
    card('New webhook', formSlot), msg.el, list);
  load().catch((e) => msg.error(e));
}

// ---------------------------------------------------------------------------------- settings: auto-block, retention

function viewAutoblock(main) {
  const msg = msgBox('autoblock');
  const slot = h('div', null, muted('Loading\u2026'));

  function render(rules) {
    const stored = rules.rules || {};
    const mode = select('autoblock-mode', 'mode', [['immediate', 'Immediately'], ['daily', 'Once a day']], rules.mode || 'immediate');
    const hour = input('autoblock-hour', 'daily_hour_utc', { type: 'number', min: 0, max: 23, value: rules.daily_hour_utc ?? 0 });
    const watch = input('autoblock-watch-days', 'watch_days', { type: 'number', min: 0, value: rules.watch_days ?? 0 });
    const names = [...Object.keys(REASONS), ...Object.keys(stored).filter((k) => !(k in REASONS))];
    const rows = names.map((r) => {
      const cur = stored[r] || { enabled: false, threshold: 1 };
      const en = h('input', { type: 'checkbox', id: `autoblock-${r}-enabled`, 'data-test': 'enabled', checked: !!cur.enabled });
      const th = input(`autoblock-${r}-threshold`, `rules.${r}.threshold`, { type: 'number', min: 1, value: cur.threshold ?? 1, 'data-test': 'threshold', class: 'input-narrow' });
      const tr = h('tr', { 'data-name': r, class: cur.enabled ? '' : 'off' },
        td('reason', mono(r), h('div', { class: 'muted small' }, REASONS[r] || '')),
        td('enabled', h('label', { class: 'switch' }, en, h('span', null, 'block'))),
        td('threshold', th, muted(' bounces')));
      en.addEventListener('change', () => tr.classList.toggle('off', !en.checked));
      return tr;
    });
    const f = form('autoblock-form', [
      h('div', { class: 'form-row' },
        field('Apply blocks', mode, 'Daily: blocks take effect at the hour below.'),
        field('Daily hour (UTC)', hour), field('Watch days', watch, 'Days of bounces counted towards a threshold.')),
      table('autoblock-rules', ['Bounce reason', 'Enabled', 'Threshold'], rows, '', 'rules'),
    ], async () => {
      const out = { ...rules, mode: mode.value, daily_hour_utc: num(hour.value), watch_days: num(watch.value), rules: {} };
      for (const tr of f.querySelectorAll('#autoblock-rules tr[data-name]')) {
        const r = tr.dataset.name;
        const enabled = tr.querySelector('[data-test=enabled]').checked;
        if (!enabled && !(r in stored)) continue; // keep the stored object small
        out.rules[r] = { ...(stored[r] || {}), enabled, threshold: num(tr.querySelector('[data-test=threshold]').value) };
      }
      const saved = await api('PUT', '/api/autoblock', out);
      render(saved);
      $('#autoblock-form').msg.notice('Saved.');
    }, { submit: 'Save rules' });
    slot.replaceChildren(f);
  }

  main.append(pageHead('Auto-block rules', 'Which bounces put a recipient on the block list, and after how many.'),
    msg.el, card(null, slot));
  api('GET', '/api/autoblock').then(render).catch((e) => { slot.replaceChildren(); msg.error(e); });
}

function viewRetention(main) {
  const msg = msgBox('retention');
  const current = h('strong', { id: 'retention-current' }, '\u2026');
  const days = input('retention-days', 'days', { type: 'number', min: 1, max: 3650, class: 'input-narrow' });
  const forever = h('input', { type: 'checkbox', id: 'retention-forever', name: 'forever' });
  const show = (d) => {
    current.textContent = d == null ? 'kept forever' : `${d} day${d === 1 ? '' : 's'}`;
    forever.checked = d == null;
    days.disabled = d == null;
    days.value = d == null ? '' : String(d);
  };
  forever.addEventListener('change', () => { days.disabled = forever.checked; if (!forever.checked) days.focus(); });
  const f = form('retention-form', [
    field('Keep records for (days)', days, '1 to 3650 days.'),
    h('label', { class: 'check' }, forever, 'Keep forever'),
  ], async () => {
    let d = null;
    if (!forever.checked) {
      d = num(days.value);
      if (d === null) throw new ApiError(0, 'Enter a number of days, or choose to keep forever.', 'days');
    }
    const r = await api('PUT', '/api/retention', { days: d });
    show(r.days);
    return 'Saved.';
  }, { submit: 'Save', cls: 'form-inline' });
  main.append(pageHead('Retention', 'How long delivery logs, bounces and stored messages are kept.'),
    msg.el, card(['Retention', h('span', { class: 'head-note' }, 'Currently: ', current)], f));
  api('GET', '/api/retention').then((r) => show(r.days)).catch((e) => msg.error(e));
}

// ---------------------------------------------------------------------------------- settings: console users

function viewConsoleUsers(main) {
  const msg = msgBox('console-users');
  const list = h('div', null, muted('Loading\u2026'));
  async function load() {
    const r = await api('GET', '/api/console-users');
    const now = Date.now();
    list.replaceChildren(table('console-users-table', ['Name', 'Status', ''], (r.items || []).map((u) => {
      const self = S.me && u.name === S.me.user;
      return h('tr', { 'data-name': u.name },
        td('name', mono(u.name), self ? badge('you', 'count') : null),
        td('locked_until', u.locked_until_ms && u.locked_until_ms > now
          ? badge(`locked until ${fmtTime(u.locked_until_ms)}`, 'failed') : badge('active', 'ok')),
        td('actions', self ? null : actionBtn('Delete', { 'data-test': 'delete', 'data-name': u.name, class: 'btn btn-small btn-danger-ghost' },
          `Delete console user ${u.name}?`, async () => {
            await api('DELETE', `/api/console-users/${enc(u.name)}`);
            await load();
            return `Deleted ${u.name}.`;
          }, msg)));
    }), 'No console users.', 'hover'));
  }
  const name = input('console-user-name', 'name', { placeholder: 'alice' });
  const pw = input('console-user-password', 'password', { type: 'password', autocomplete: 'new-password' });
  const add = form('console-user-form', [field('Name', name), field('Password', pw, 'At least 12 characters.')], async (f) => {
    const r = await api('POST', '/api/console-users', { name: name.value.trim(), password: pw.value });
    f.reset();
    await load();
    return `Added ${r.name || name.value}.`;
  }, { submit: 'Add user', cls: 'form-inline' });
  const cur = input('password-current', 'current', { type: 'password', autocomplete: 'current-password' });
  const nw = input('password-new', 'new', { type: 'password', autocomplete: 'new-password' });
  const pwForm = form('password-form', [field('Current password', cur), field('New password', nw, 'At least 12 characters.')], async (f) => {
    await api('POST', '/api/password', { current: cur.value, new: nw.value });
    f.reset();
    return 'Your password is changed.';
  }, { submit: 'Change password', cls: 'form-inline' });
  main.append(pageHead('Console users', 'Five failed logins within 15 minutes lock an account for 15 minutes.'),
    card('Add a console user', add), card('Console users', msg.el, list), card('Your password', pwForm));
  load().catch((e) => msg.error(e));
}

// ---------------------------------------------------------------------------------- audit log

function viewAudit(main) {
  const msg = msgBox('audit');
  const list = h('div', null, muted('Loading\u2026'));
  const refresh = h('button', { type: 'button', id: 'audit-refresh', class: 'btn btn-ghost' }, 'Refresh');
  async function load() {
    const r = await api('GET', '/api/audit?limit=200');
    list.replaceChildren(table('audit-table', ['Time', 'User', 'IP', 'Action', 'Detail', 'Result'],
      (r.items || []).map((a) => h('tr', { class: a.ok ? '' : 'row-bad' },
        td('at', fmtTime(a.at_ms)), td('user', mono(a.user)), td('ip', mono(a.ip)), td('action', a.action),
        tdFill('detail', a.detail), td('ok', a.ok ? badge('ok', 'ok') : badge('refused', 'failed')))),
      'No audit entries yet.', 'hover'));
  }
  refresh.addEventListener('click', () => { msg.clear(); load().catch((e) => msg.error(e)); });
  main.append(pageHead('Audit log', 'Every login and change made through the console, newest first (last 200).', refresh),
    msg.el, h('div', { class: 'card card-flush' }, list));
  load().catch((e) => msg.error(e));
}

// ---------------------------------------------------------------------------------- cluster

function viewCluster(main) {
  const msg = msgBox('cluster');
  const summary = h('span', { id: 'cluster-summary' });
  const list = h('div', null, muted('Loading\u2026'));
  async function load() {
    const r = await api('GET', '/api/cluster');
    summary.textContent = `This node ${orDash(r.this_id)} \u00b7 leader ${orDash(r.leader_id)} \u00b7 term ${orDash(r.term)}`;
    list.replaceChildren(table('cluster-table',
      ['Node', 'Addresses (Raft / HTTP)', 'Membership', 'Health', 'Role', 'Term', 'Log index', 'Applied', 'Leased', ''],
      (r.nodes || []).map((n) => h('tr', { 'data-id': n.id, class: n.id === r.leader_id ? 'leader' : '' },
        td('id', h('strong', null, String(n.id)), n.id === r.leader_id ? badge('leader', 'leader') : null,
          n.id === r.this_id ? h('div', { class: 'muted small' }, 'this node') : null),
        td('addresses', h('span', { class: 'mono addr', 'data-col': 'raft_addr' }, orDash(n.raft_addr)),
          h('span', { class: 'mono addr muted', 'data-col': 'http_addr' }, orDash(n.http_addr))),
        td('voter', n.voter ? badge('voter', 'voter') : badge('learner', 'learner')),
        td('health', badge(n.health || 'unknown', n.health === 'up' ? 'up' : 'down')),
        td('role', orDash(n.role)), td('term', orDash(n.term)),
        td('last_log_index', fmtNum(n.last_log_index)), td('last_applied_index', fmtNum(n.last_applied_index)),
        td('leased', fmtNum(n.leased)),
        td('actions', actionBtn('Remove', { 'data-test': 'remove', 'data-id': n.id, class: 'btn btn-small btn-danger-ghost' },
          `Remove node ${n.id} from the cluster? It stops receiving the Raft log.`, async () => {
            await api('DELETE', `/api/cluster/nodes/${enc(n.id)}`);
            await load();
            return `Removed node ${n.id}.`;
          }, msg)))),
      'No nodes.', 'hover'));
  }
  const id = input('node-id', 'id', { type: 'number', min: 1, class: 'input-narrow', placeholder: '4' });
  const raft = input('node-raft', 'raft_addr', { placeholder: '10.0.0.4:9400' });
  const http = input('node-http', 'http_addr', { placeholder: '10.0.0.4:8400' });
  const f = form('node-form', [field('Node id', id, null, 'field-narrow'), field('Raft address', raft), field('HTTP address', http)], async (f) => {
    const body = { id: num(id.value), raft_addr: raft.value.trim(), http_addr: http.value.trim() };
    await api('POST', '/api/cluster/nodes', body);
    f.reset();
    await load();
    return `Node ${body.id} is now a voter.`;
  }, { submit: 'Add node', cls: 'form-inline' });
  main.append(pageHead('Cluster', summary, h('span', { class: 'live' }, h('span', { class: 'live-dot' }), 'Live')),
    msg.el, h('div', { class: 'card card-flush' }, list),
    card('Add a node', h('p', { class: 'hint' }, 'Start the new node first (empty, or with --join); it then becomes a voter.'), f));
  let failing = false; // a failed refresh's error goes away with the next good one
  const tick = () => load().then(() => { if (failing) msg.clear(); failing = false; })
    .catch((e) => { failing = true; msg.error(e); });
  tick();
  every(5000, tick);
}

// ---------------------------------------------------------------------------------- start

boot();
