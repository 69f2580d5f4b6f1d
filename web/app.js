/*
 * signoff console: the reviewers' page that signoffd serves at "/".
 *
 * Plain ES2020 in one file, no framework and no build step. It runs under a
 * Content-Security-Policy without inline script or style, so every node is made with
 * document.createElement and filled with textContent: no HTML string is ever parsed, and no
 * text from a request (command, intent, diff, comment) can become markup. Links taken from
 * request data are made only for http(s) URLs.
 *
 * Routes (in the hash, so that links from chat such as /#/r/req_... work):
 *   #/queue            pending requests this reviewer may decide (the default)
 *   #/queue/mine       requests I made, reviewed, or that were made on my behalf
 *   #/queue/decided    requests that are no longer pending
 *   #/queue/all        everything I may see
 *   #/r/<id>           one request, with Approve / Deny
 *   #/link/<code>/<id> a one-time sign-in link from chat; becomes #/r/<id> at once
 *   #/history          decided requests with their story from the audit log
 *   #/audit            the audit log, its latest checkpoint, verification, export
 *
 * Data comes from the /v1 API with the session cookie (credentials: "same-origin"); every
 * POST and DELETE carries X-CSRF-Token. Live updates come from Server-Sent Events at
 * /v1/events (events named "request"); when one arrives, what is on screen is fetched again.
 * The only timer that runs all the time is a 1-second tick that rewrites age and expiry text
 * already on the page; it never calls the API.
 *
 * Stable hooks for tests (ids unless written as tag.class or [attribute]):
 *   sign-in    #signin-form, #token-input, #signin-button, #signin-error
 *   header     #whoami, #signout-button, #live-indicator ([data-state] = live | connecting |
 *              reconnecting | off), #nav-queue, #nav-history, #nav-audit
 *   views      #view-signin, #view-queue, #view-request, #view-history, #view-audit (the one
 *              shown has no [hidden]); #announcer (polite live region), #global-error
 *   queue      #queue (a table), #queue-body, tr.request-row[data-id] (one per request, with
 *              [data-status]), a.row-link (opens it), #filter-pending, #filter-mine,
 *              #filter-decided, #filter-all ([aria-pressed] = "true" on the active one),
 *              #queue-summary, #queue-empty, #queue-error, #queue-more, .countdown, .age
 *   request    #request (container, [data-id] = the request shown), #request-title,
 *              #request-status ([data-status]), #request-action, #request-command (a <pre>
 *              for shell), #request-arguments (a <pre> of JSON for tools), #request-who,
 *              #request-intent, #request-context, #request-diff (a <pre>; lines are
 *              span.diff-line plus one of .diff-add .diff-del .diff-hunk .diff-file .diff-ctx),
 *              #request-ticket (an <a> only for an http(s) URL), #request-trace,
 *              #request-anomaly, #request-reviews, #request-needed, #request-expiry,
 *              #request-story, #request-error,
 *              #review-comment, #approve-button, #deny-button (present only when this reviewer
 *              may decide now), #review-error (always present in the decision panel),
 *              #no-review-reason (present instead of the buttons, with the reason in words)
 *   history    #history, details.history-item[data-id], .history-story
 *   audit      #audit, #audit-error, #audit-body, #audit-verify-status ([data-ok] = true |
 *              false), #audit-verify-again, #audit-checkpoint, #audit-export-jsonl,
 *              #audit-export-csv, #audit-events (a table), #audit-older, #audit-newer
 */
'use strict';

/* ---------- bounds and settings ---------- */

const LIST_PAGE = 200;              /* the API's largest page */
const LIST_STEP = 200;              /* rows shown at first, and added by "Show more" */
const LIST_MAX_CALLS = 20;          /* list calls per load (each looks at <= 2,000 stored) */
const FETCH_TIMEOUT_MS = 20000;
const REFRESH_DEBOUNCE_MS = 250;    /* several events in a burst give one refetch */
const LIVE_RETRY_MIN_MS = 2000;
const LIVE_RETRY_MAX_MS = 60000;
const EXPIRY_SOON_MS = 5 * 60 * 1000;
const AUDIT_PAGE = 100;
const AUDIT_MAX_CALLS = 20;
const DIFF_MAX_LINES = 5000;
const TEXT_MAX_CHARS = 200000;      /* one rendered text or JSON block */
const SUMMARY_MAX_CHARS = 160;
const COMMENT_MAX_BYTES = 4096;     /* the API's limit on a review comment */
const FILTERS = ['pending', 'mine', 'decided', 'all'];
const REQUEST_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/* ---------- state ---------- */

const state = {
  session: null,        /* {principal, csrf_token, expires_at} once signed in */
  route: null,          /* {view, filter?, id?} */
  loadSeq: 0,           /* answers of an older navigation are dropped */
  queue: {items: [], more: false, want: LIST_STEP, hidden: 0, filter: 'pending', loaded: false},
  request: null,        /* the request shown on the request page */
  story: null,          /* its explain answer, or {error} */
  reviewBusy: false,
  reviewError: '',
  history: {items: [], more: false, want: LIST_STEP, open: new Set(), stories: new Map(), loading: new Set()},
  audit: {after: null, events: [], next: null, atEnd: true},
  live: {source: null, state: 'off', retryMs: LIVE_RETRY_MIN_MS, retryTimer: null, wasDown: false},
  refreshTimer: null,
  refreshing: false,
  refreshAgain: false,
  sessionTimer: null,
  tickTimer: null,
};

/* ---------- DOM helpers ---------- */

function $(id) {
  return document.getElementById(id);
}

function isHttpUrl(s) {
  if (typeof s !== 'string' || s.length > 2048) return false;
  let u;
  try {
    u = new URL(s);
  } catch (e) {
    return false;
  }
  return u.protocol === 'http:' || u.protocol === 'https:';
}

function isSafeHref(s) {
  if (typeof s !== 'string') return false;
  if (s.startsWith('#') || (s.startsWith('/') && !s.startsWith('//'))) return true;
  return isHttpUrl(s);
}

/* el('p', {class: 'x', text: 'y'}, child...) — the one way nodes are made. Text always goes
 * in as text; attributes named on* are refused; href must be internal or http(s). */
function el(tag, props, ...kids) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key === 'data') {
        for (const [dk, dv] of Object.entries(value)) {
          if (dv !== null && dv !== undefined) node.dataset[dk] = String(dv);
        }
      } else if (key === 'on') {
        for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      } else if (/^on/i.test(key)) {
        throw new Error('event attributes are not allowed: ' + key);
      } else if (key === 'href') {
        if (!isSafeHref(value)) throw new Error('refused a link that is not http(s)');
        node.setAttribute('href', value);
      } else {
        node.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  append(node, kids);
  return node;
}

function append(node, ...kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    if (typeof kid === 'string' || typeof kid === 'number') {
      node.appendChild(document.createTextNode(String(kid)));
    } else {
      node.appendChild(kid);
    }
  }
  return node;
}

function clear(node) {
  while (node && node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function setText(node, text) {
  if (node) node.textContent = text === null || text === undefined ? '' : String(text);
}

function show(node, visible) {
  if (node) node.hidden = !visible;
}

function announce(text) {
  const node = $('announcer');
  if (!node) return;
  node.textContent = '';
  /* a fresh text node on the next frame makes screen readers read a repeated message */
  window.setTimeout(() => { node.textContent = text; }, 50);
}

/* Keep focus (and a comment being typed) across a re-render of container. */
function keepFocus(container, render) {
  const active = document.activeElement;
  let key = null;
  if (active && container.contains(active)) {
    if (active.id) key = {id: active.id};
    else {
      const holder = active.closest('[data-id]');
      if (holder) key = {dataId: holder.dataset.id, tag: active.tagName};
    }
  }
  render();
  if (!key) return;
  let target = null;
  if (key.id) target = $(key.id);
  else {
    const holder = container.querySelector('[data-id="' + cssEscape(key.dataId) + '"]');
    if (holder) target = holder.tagName === key.tag ? holder : holder.querySelector(key.tag.toLowerCase());
  }
  if (target && typeof target.focus === 'function') target.focus({preventScroll: true});
}

function cssEscape(s) {
  if (window.CSS && typeof window.CSS.escape === 'function') return window.CSS.escape(s);
  return String(s).replace(/[^A-Za-z0-9_-]/g, (c) => '\\' + c.charCodeAt(0).toString(16) + ' ');
}

/* ---------- formatting ---------- */

function parseTime(s) {
  if (typeof s !== 'string') return NaN;
  return Date.parse(s);
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  const h = Math.floor(m / 60);
  if (h < 24) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  const d = Math.floor(h / 24);
  return d + 'd ' + (h % 24) + 'h';
}

function fmtAgo(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return s + 's ago';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ago';
  const h = Math.floor(m / 60);
  if (h < 24) return h + 'h ' + (m % 60) + 'm ago';
  return Math.floor(h / 24) + 'd ago';
}

function fmtLocal(s) {
  const t = parseTime(s);
  if (Number.isNaN(t)) return String(s);
  return new Date(t).toLocaleString();
}

/* <time> with the server's string in datetime and the local time on hover. */
function timeEl(iso, text, cls) {
  return el('time', {datetime: iso, title: fmtLocal(iso), class: cls || null}, text || fmtLocal(iso));
}

function ageEl(iso) {
  const node = timeEl(iso, '', 'age');
  node.dataset.since = iso;
  updateAge(node);
  return node;
}

function countdownEl(iso) {
  const node = timeEl(iso, '', 'countdown');
  node.dataset.until = iso;
  updateCountdown(node);
  return node;
}

function updateAge(node) {
  const t = parseTime(node.dataset.since);
  node.textContent = Number.isNaN(t) ? '—' : fmtAgo(Date.now() - t);
}

function updateCountdown(node) {
  const t = parseTime(node.dataset.until);
  if (Number.isNaN(t)) {
    node.textContent = '—';
    return;
  }
  const left = t - Date.now();
  node.classList.toggle('soon', left > 0 && left <= EXPIRY_SOON_MS);
  node.classList.toggle('past', left <= 0);
  node.textContent = left > 0 ? 'in ' + fmtDuration(left) : 'expired ' + fmtAgo(-left);
}

function tick() {
  for (const node of document.querySelectorAll('.countdown[data-until]')) updateCountdown(node);
  for (const node of document.querySelectorAll('.age[data-since]')) updateAge(node);
}

function truncate(s, max) {
  s = String(s);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

function shortHex(s, n) {
  return typeof s === 'string' && s.length > n ? s.slice(0, n) + '…' : String(s === null || s === undefined ? '' : s);
}

/* Characters a reviewer cannot see (controls, zero-width, bidirectional overrides) are shown
 * as <U+XXXX> so that text cannot hide what it does. Tabs and newlines stay. */
const INVISIBLE_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF]/g;

function visible(s) {
  return String(s).replace(INVISIBLE_RE, (c) => '⟨U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0') + '⟩');
}

function hasInvisible(s) {
  INVISIBLE_RE.lastIndex = 0;
  const found = INVISIBLE_RE.test(String(s));
  INVISIBLE_RE.lastIndex = 0;
  return found;
}

function prettyJson(v) {
  let s;
  try {
    s = JSON.stringify(v, null, 2);
  } catch (e) {
    s = String(v);
  }
  return s === undefined ? 'null' : s;
}

/* A POSIX-shell rendering of argv: plain words as they are, others in single quotes. */
function shellJoin(words) {
  return words.map((w) => {
    w = String(w);
    if (w === '') return "''";
    if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w)) return w;
    return "'" + w.replace(/'/g, "'\\''") + "'";
  }).join(' ');
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v) {
  return typeof v === 'string' ? v : '';
}

/* A block of text in a <pre>, bounded, with invisible characters shown. */
function preEl(text, props) {
  let s = String(text);
  let cut = 0;
  if (s.length > TEXT_MAX_CHARS) {
    cut = s.length - TEXT_MAX_CHARS;
    s = s.slice(0, TEXT_MAX_CHARS);
  }
  const pre = el('pre', Object.assign({class: 'code', tabindex: '0'}, props || {}), visible(s));
  if (!cut && !hasInvisible(text)) return pre;
  return el('div', null, pre,
    hasInvisible(text) ? el('p', {class: 'warn'}, 'This text holds invisible or direction-changing characters, shown as ⟨U+…⟩.') : null,
    cut ? el('p', {class: 'muted small'}, cut + ' more characters not shown.') : null);
}

/* ---------- statuses and summaries ---------- */

const STATUS_WORDS = {
  pending: 'pending', approved: 'approved', denied: 'denied', expired: 'expired',
  cancelled: 'cancelled', claimed: 'running', succeeded: 'succeeded', failed: 'failed',
};

function statusBadge(status, id) {
  const s = typeof status === 'string' ? status : 'unknown';
  return el('span', {class: 'badge status-' + s.replace(/[^a-z]/g, ''), id: id || null, data: {status: s}},
    STATUS_WORDS[s] || s);
}

function isProduction(env) {
  return typeof env === 'string' && /prod/i.test(env);
}

function envBadge(env) {
  if (typeof env !== 'string' || env === '') return el('span', {class: 'muted'}, '—');
  return el('span', {class: 'env' + (isProduction(env) ? ' env-prod' : '')}, env);
}

function actionSummary(action) {
  const a = isObject(action) ? action : {};
  const kind = str(a.kind) || 'action';
  let text = '';
  if (str(a.command_line)) text = a.command_line;
  else if (Array.isArray(a.command) && a.command.length) text = shellJoin(a.command);
  else if (str(a.tool)) text = (str(a.server) ? a.server + ' › ' : '') + a.tool;
  else if (str(a.path)) text = kind + ' ' + a.path;
  else if (str(a.url)) text = kind + ' ' + a.url;
  else if (str(a.resource)) text = kind + ' on ' + a.resource;
  else text = kind;
  return visible(text.replace(/\s+/g, ' ').trim());
}

function riskItems(r) {
  const items = [];
  const rules = r.decision && Array.isArray(r.decision.rules) ? r.decision.rules : [];
  for (const rule of rules) {
    if (!isObject(rule)) continue;
    const name = str(rule.name) || 'rule';
    const reason = str(rule.reason);
    let text = reason || ('rule ' + name + ' (' + (str(rule.decide) || '?') + ')');
    if (rule.matched === 'unknown') text += ' — could not be decided' + (str(rule.why) ? ': ' + rule.why : '');
    items.push({text, cls: 'risk-rule', title: 'rule ' + name});
  }
  for (const reason of anomalyReasons(r)) items.push({text: reason, cls: 'risk-anomaly', title: 'anomaly'});
  return items;
}

function anomalyReasons(r) {
  const list = r.anomaly && Array.isArray(r.anomaly.reasons) ? r.anomaly.reasons : [];
  return list.map((x) => {
    if (typeof x === 'string') return x;
    if (isObject(x)) return str(x.text) || str(x.reason) || str(x.message) || prettyJson(x);
    return String(x);
  });
}

function me() {
  return state.session && state.session.principal ? str(state.session.principal.id) : '';
}

function myReview(r) {
  const reviews = Array.isArray(r.reviews) ? r.reviews : [];
  return reviews.find((rv) => isObject(rv) && rv.reviewer === me()) || null;
}

function mayReview(r) {
  if (r.status !== 'pending') return false;
  if (!isObject(r.viewer)) return true; /* the server decides; its refusal is shown */
  return r.viewer.may_review === true;
}

function noReviewReason(r) {
  const mine = myReview(r);
  const viewerReason = isObject(r.viewer) ? str(r.viewer.reason) : '';
  const parts = [];
  if (mine) {
    parts.push('You ' + (mine.decision === 'deny' ? 'denied' : 'approved') + ' this request' +
      (str(mine.at) ? ' at ' + fmtLocal(mine.at) : '') + '.');
  }
  if (r.status !== 'pending') {
    parts.push('This request is already decided: it is ' + (STATUS_WORDS[r.status] || r.status) + '.');
  } else if (viewerReason && viewerReason !== 'already decided') {
    parts.push('You cannot decide this request: ' + viewerReason + '.');
  } else if (!mine) {
    parts.push('You cannot decide this request.');
  }
  return parts.join(' ');
}

function requesterText(r) {
  const who = str(r.requester) || '?';
  if (str(r.on_behalf_of) && r.on_behalf_of !== r.requester) return who + ' for ' + r.on_behalf_of;
  return who;
}

/* ---------- the API ---------- */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function describeError(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return err.message;
    return err.message + ' (' + err.code + ', HTTP ' + err.status + ')';
  }
  return 'Something went wrong in this page: ' + (err && err.message ? err.message : String(err));
}

async function rawFetch(method, path, body) {
  const headers = {Accept: 'application/json'};
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && state.session && str(state.session.csrf_token)) {
    headers['X-CSRF-Token'] = state.session.csrf_token;
  }
  const ctl = new AbortController();
  const timer = window.setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  init.signal = ctl.signal;
  try {
    let res;
    let text;
    try {
      res = await fetch(path, init);
      text = await res.text();
    } catch (e) {
      if (ctl.signal.aborted) throw new ApiError(0, 'timeout', 'signoffd did not answer within ' + FETCH_TIMEOUT_MS / 1000 + ' seconds.');
      throw new ApiError(0, 'network', 'Could not reach signoffd (network error). Check the connection and try again.');
    }
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = undefined;
      }
    }
    if (!res.ok) {
      const err = isObject(data) && isObject(data.error) ? data.error : {};
      throw new ApiError(res.status, str(err.code) || 'http_' + res.status,
        str(err.message) || 'signoffd answered HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '') + '.');
    }
    if (data === undefined) throw new ApiError(res.status, 'bad_answer', 'signoffd sent an answer that is not JSON.');
    return data;
  } finally {
    window.clearTimeout(timer);
  }
}

/* api() is rawFetch for signed-in calls: a 401 ends the session on this page, and a stale
 * CSRF token is fetched again once (a refused call changed nothing, so retrying is safe). */
async function api(method, path, body) {
  try {
    return await rawFetch(method, path, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionEnded('Your session has ended. Sign in again.');
      err.sessionEnded = true;
      throw err;
    }
    if (err instanceof ApiError && err.status === 403 && err.code === 'csrf' && method !== 'GET') {
      const fresh = await rawFetch('GET', '/v1/session');
      if (isObject(fresh) && isObject(fresh.principal)) state.session = fresh;
      return rawFetch(method, path, body);
    }
    throw err;
  }
}

/* Pages through GET /v1/requests until `want` requests pass `keep`, the list ends, or the
 * call bound is reached. */
async function loadRequests(status, want, keep) {
  const items = [];
  let cursor = null;
  let calls = 0;
  let more = false;
  let skipped = 0;
  do {
    let path = '/v1/requests?limit=' + LIST_PAGE;
    if (status) path += '&status=' + encodeURIComponent(status);
    if (cursor) path += '&cursor=' + encodeURIComponent(cursor);
    const page = await api('GET', path);
    calls++;
    const list = isObject(page) && Array.isArray(page.requests) ? page.requests : [];
    for (const r of list) {
      if (!isObject(r) || typeof r.id !== 'string') continue;
      if (keep(r)) items.push(r);
      else skipped++;
    }
    cursor = isObject(page) && typeof page.next === 'string' && page.next ? page.next : null;
    more = cursor !== null;
  } while (more && items.length < want && calls < LIST_MAX_CALLS);
  return {items: items.slice(0, want), more: more || items.length > want, skipped};
}

/* ---------- session ---------- */

/*
 * A one-time sign-in link from a chat message: #/link/<code>/<request id>. The code leaves
 * the address bar and the history at once, then buys a session for the person it was made
 * for; the page opens the request.
 */
const LINK_RE = /^#\/link\/([0-9a-f]{64})\/([A-Za-z0-9_-]{1,64})$/;

async function signInWithLink() {
  const m = LINK_RE.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, '', '#/r/' + m[2]);
  try {
    const session = await rawFetch('POST', '/v1/session', {link: m[1]});
    if (!isObject(session) || !isObject(session.principal)) throw new ApiError(200, 'bad_answer', 'signoffd sent a session answer this page does not understand.');
    signedIn(session);
  } catch (err) {
    const text = err instanceof ApiError && err.status === 401
      ? 'This sign-in link was already used or has expired. Ask for a new one in chat, or sign in with your token.'
      : 'Could not sign in with the link: ' + describeError(err);
    showSignin(text);
  }
  return true;
}

async function boot() {
  wireStatic();
  state.tickTimer = window.setInterval(tick, 1000);
  if (await signInWithLink()) return;
  let session = null;
  try {
    session = await rawFetch('GET', '/v1/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showSignin('');
    } else {
      showSignin('Could not check whether you are signed in: ' + describeError(err));
    }
    return;
  }
  if (!isObject(session) || !isObject(session.principal)) {
    showSignin('signoffd sent a session answer this page does not understand.');
    return;
  }
  signedIn(session);
}

function signedIn(session) {
  state.session = session;
  const p = session.principal;
  const groups = Array.isArray(p.groups) ? p.groups.filter((g) => typeof g === 'string') : [];
  const who = $('whoami');
  clear(who);
  append(who, el('span', {class: 'visually-hidden'}, 'Signed in as '), el('strong', null, str(p.id) || '?'),
    groups.length ? el('span', {class: 'muted'}, ' · ' + groups.join(', ')) : null);
  who.title = 'Signed in as ' + (str(p.id) || '?') + (str(p.kind) ? ' (' + p.kind + ')' : '') +
    (groups.length ? ', groups: ' + groups.join(', ') : '');
  show($('nav'), true);
  show($('session-box'), true);
  armSessionTimer(session.expires_at);
  connectLive();
  route(false);
}

function armSessionTimer(expiresAt) {
  if (state.sessionTimer) window.clearTimeout(state.sessionTimer);
  state.sessionTimer = null;
  const t = parseTime(expiresAt);
  if (Number.isNaN(t)) return;
  const left = Math.min(Math.max(t - Date.now(), 0), 2147483000);
  state.sessionTimer = window.setTimeout(checkSession, left);
}

/* At the session's expiry, ask the server (it may have extended it) rather than guess. */
async function checkSession() {
  state.sessionTimer = null;
  if (!state.session) return;
  let fresh;
  try {
    fresh = await api('GET', '/v1/session');
  } catch (err) {
    if (!err.sessionEnded) state.sessionTimer = window.setTimeout(checkSession, 30000);
    return;
  }
  if (!isObject(fresh) || !isObject(fresh.principal) || parseTime(fresh.expires_at) <= Date.now()) {
    sessionEnded('Your session has expired. Sign in again.');
    return;
  }
  state.session = fresh;
  armSessionTimer(fresh.expires_at);
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('token-input');
  const button = $('signin-button');
  const error = $('signin-error');
  const token = input.value.trim();
  setText(error, '');
  error.classList.remove('form-info');
  if (!token) {
    setText(error, 'Paste your token first.');
    input.focus();
    return;
  }
  button.disabled = true;
  setText(button, 'Signing in…');
  try {
    const session = await rawFetch('POST', '/v1/session', {token});
    input.value = '';
    if (!isObject(session) || !isObject(session.principal)) throw new ApiError(200, 'bad_answer', 'signoffd sent a session answer this page does not understand.');
    signedIn(session);
  } catch (err) {
    let text;
    if (err instanceof ApiError && err.code === 'not_human') {
      text = 'This token belongs to an agent or a service. The console is for people: sign in with your own token.';
    } else if (err instanceof ApiError && err.status === 401) {
      text = 'That token was not accepted. Check that you pasted all of it.';
    } else if (err instanceof ApiError && err.status === 429) {
      text = err.message || 'Too many failed attempts; wait a little and try again.';
    } else {
      text = 'Could not sign in: ' + describeError(err);
    }
    setText(error, text);
    input.select();
    input.focus();
  } finally {
    button.disabled = false;
    setText(button, 'Sign in');
  }
}

async function signOut() {
  const button = $('signout-button');
  button.disabled = true;
  try {
    await rawFetch('DELETE', '/v1/session');
    sessionEnded('You have signed out.', true);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) sessionEnded('You have signed out.', true);
    else showGlobalError('Could not sign out: ' + describeError(err) + ' Close this browser window to be safe.');
  } finally {
    button.disabled = false;
  }
}

/* Forget everything about the person and what they saw, and show the sign-in form. */
function sessionEnded(message, info) {
  if (!state.session) return;
  state.session = null;
  disconnectLive();
  if (state.sessionTimer) window.clearTimeout(state.sessionTimer);
  state.sessionTimer = null;
  state.loadSeq++;
  state.request = null;
  state.story = null;
  state.reviewError = '';
  state.queue = {items: [], more: false, want: LIST_STEP, hidden: 0, filter: 'pending', loaded: false};
  state.history = {items: [], more: false, want: LIST_STEP, open: new Set(), stories: new Map(), loading: new Set()};
  state.audit = {after: null, events: [], next: null, atEnd: true};
  clear($('queue-body'));
  clear($('request'));
  clear($('history'));
  clear($('audit-events-body'));
  clear($('audit-checkpoint'));
  setText($('audit-verify-status'), '');
  setText($('whoami'), '');
  show($('nav'), false);
  show($('session-box'), false);
  showSignin(message, info);
}

function showSignin(message, info) {
  showView('signin');
  const error = $('signin-error');
  setText(error, message || '');
  error.classList.toggle('form-info', Boolean(info));
  document.title = 'Sign in · signoff';
  $('token-input').focus();
}

/* ---------- live updates ---------- */

function setLive(s, detail) {
  state.live.state = s;
  const node = $('live-indicator');
  if (!node) return;
  const words = {live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', off: 'offline'};
  node.dataset.state = s;
  node.className = 'live live-' + s;
  node.textContent = words[s] || s;
  node.title = detail || (s === 'live' ? 'Live updates are on' : 'Live updates are not flowing; the page may be out of date');
}

function connectLive() {
  disconnectLive();
  if (typeof window.EventSource !== 'function') {
    setLive('off', 'This browser has no Server-Sent Events; reload the page to see changes.');
    return;
  }
  let source;
  try {
    source = new EventSource('/v1/events');
  } catch (e) {
    setLive('off', 'Could not open live updates.');
    return;
  }
  state.live.source = source;
  setLive('connecting');
  source.addEventListener('open', () => {
    if (state.live.source !== source) return;
    state.live.retryMs = LIVE_RETRY_MIN_MS;
    setLive('live');
    if (state.live.wasDown) {
      state.live.wasDown = false;
      scheduleRefresh(); /* changes may have happened while we were away */
    }
  });
  source.addEventListener('request', onRequestEvent);
  source.addEventListener('error', () => {
    if (state.live.source !== source) return;
    state.live.wasDown = true;
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      state.live.source = null;
      liveClosed();
    } else {
      setLive('reconnecting');
    }
  });
}

/* The browser gave up (the server refused the stream): check the session, then try again
 * later with a growing delay. */
function liveClosed() {
  const delay = state.live.retryMs;
  state.live.retryMs = Math.min(delay * 2, LIVE_RETRY_MAX_MS);
  setLive('off', 'Live updates stopped; trying again in ' + Math.round(delay / 1000) + ' s.');
  state.live.retryTimer = window.setTimeout(async () => {
    state.live.retryTimer = null;
    if (!state.session) return;
    try {
      const fresh = await api('GET', '/v1/session');
      if (isObject(fresh) && isObject(fresh.principal) && state.session) state.session = fresh;
    } catch (err) {
      if (err.sessionEnded) return;
    }
    if (state.session && !state.live.source) connectLive();
  }, delay);
}

function disconnectLive() {
  if (state.live.retryTimer) window.clearTimeout(state.live.retryTimer);
  state.live.retryTimer = null;
  if (state.live.source) state.live.source.close();
  state.live.source = null;
  state.live.wasDown = false;
  setLive('off');
}

function onRequestEvent(ev) {
  let data = null;
  try {
    data = JSON.parse(ev.data);
  } catch (e) {
    data = null;
  }
  const id = isObject(data) && typeof data.id === 'string' ? data.id : null;
  const view = state.route ? state.route.view : null;
  if (id) state.history.stories.delete(id);
  if (view === 'queue' || view === 'history') scheduleRefresh();
  else if (view === 'request' && (!id || id === state.route.id)) scheduleRefresh();
  else if (view === 'audit' && state.audit.atEnd) scheduleRefresh();
}

function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = window.setTimeout(runRefresh, REFRESH_DEBOUNCE_MS);
}

async function runRefresh() {
  state.refreshTimer = null;
  if (state.refreshing || state.reviewBusy) {
    state.refreshAgain = true;
    return;
  }
  state.refreshing = true;
  try {
    await loadView(true);
  } finally {
    state.refreshing = false;
    if (state.refreshAgain) {
      state.refreshAgain = false;
      scheduleRefresh();
    }
  }
}

/* ---------- routing ---------- */

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const parts = raw.split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (e) {
      return p;
    }
  });
  if (parts[0] === 'r') return {view: 'request', id: parts[1] || ''};
  if (parts[0] === 'history') return {view: 'history'};
  if (parts[0] === 'audit') return {view: 'audit'};
  const filter = parts[0] === 'queue' && FILTERS.includes(parts[1]) ? parts[1] : 'pending';
  return {view: 'queue', filter};
}

function showView(name) {
  for (const v of ['loading', 'signin', 'queue', 'request', 'history', 'audit']) {
    show($('view-' + v), v === name);
  }
  for (const link of document.querySelectorAll('#nav a')) {
    const current = (link.id === 'nav-queue' && (name === 'queue' || name === 'request')) ||
      link.id === 'nav-' + name;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/* Show the view the hash names; move focus to its heading when the person navigated. */
function route(navigated) {
  if (!state.session) {
    showSignin($('signin-error').textContent);
    return;
  }
  const prev = state.route;
  state.route = parseHash();
  showGlobalError('');
  if (!prev || prev.view !== state.route.view || prev.id !== state.route.id) {
    state.reviewError = '';
  }
  showView(state.route.view);
  loadView(false).then(() => {
    if (!navigated) return;
    const heading = state.route.view === 'request' ? $('request-title') : $(state.route.view + '-title');
    if (heading) heading.focus({preventScroll: false});
  });
}

function loadView(quiet) {
  if (!state.session || !state.route) return Promise.resolve();
  switch (state.route.view) {
    case 'queue': return loadQueue(quiet);
    case 'request': return loadRequestPage(quiet);
    case 'history': return loadHistory(quiet);
    case 'audit': return loadAudit(quiet);
    default: return Promise.resolve();
  }
}

function showGlobalError(text) {
  const node = $('global-error');
  setText(node, text);
  show(node, Boolean(text));
}

/* ---------- the queue ---------- */

function queueKeep(filter) {
  const id = me();
  switch (filter) {
    case 'pending': return (r) => r.status === 'pending' && mayReview(r);
    case 'mine': return (r) => r.requester === id || r.on_behalf_of === id || Boolean(myReview(r));
    case 'decided': return (r) => r.status !== 'pending';
    default: return () => true;
  }
}

async function loadQueue(quiet) {
  const filter = state.route.filter;
  const q = state.queue;
  if (q.filter !== filter) {
    q.filter = filter;
    q.want = LIST_STEP;
    q.loaded = false;
  }
  for (const f of FILTERS) {
    const b = $('filter-' + f);
    if (b) b.setAttribute('aria-pressed', String(f === filter));
  }
  const seq = ++state.loadSeq;
  if (!quiet && !q.loaded) {
    clear($('queue-body'));
    setText($('queue-summary'), 'Loading…');
    show($('queue-empty'), false);
  }
  let result;
  try {
    result = await loadRequests(filter === 'pending' ? 'pending' : null, q.want, queueKeep(filter));
  } catch (err) {
    if (seq !== state.loadSeq || err.sessionEnded) return;
    const node = $('queue-error');
    setText(node, 'Could not load the requests: ' + describeError(err));
    show(node, true);
    if (!q.loaded) setText($('queue-summary'), '');
    return;
  }
  if (seq !== state.loadSeq) return;
  show($('queue-error'), false);
  const before = q.loaded ? q.items.length : -1;
  q.items = result.items;
  q.more = result.more;
  q.hidden = filter === 'pending' ? result.skipped : 0;
  q.loaded = true;
  renderQueue();
  if (quiet && before !== -1 && before !== q.items.length) announce(queueSummaryText());
}

function queueSummaryText() {
  const q = state.queue;
  const n = q.items.length;
  const plural = (k, one, many) => k + ' ' + (k === 1 ? one : many);
  switch (q.filter) {
    case 'pending': {
      let s = n ? plural(n, 'request waits', 'requests wait') + ' for your decision.' : 'Nothing waits for your decision.';
      if (q.hidden) s += ' ' + plural(q.hidden, 'other pending request', 'other pending requests') + ' you may not decide';
      return s;
    }
    case 'mine': return n ? plural(n, 'request', 'requests') + ' you made, reviewed, or that were made on your behalf.' : 'No requests of yours.';
    case 'decided': return n ? plural(n, 'decided request', 'decided requests') + '.' : 'No decided requests yet.';
    default: return n ? plural(n, 'request', 'requests') + ' you may see.' : 'No requests you may see.';
  }
}

function renderQueue() {
  const q = state.queue;
  const body = $('queue-body');
  keepFocus($('queue'), () => {
    clear(body);
    for (const r of q.items) body.appendChild(queueRow(r));
  });
  const summary = $('queue-summary');
  setText(summary, queueSummaryText());
  if (q.filter === 'pending' && q.hidden) append(summary, ': see ', el('a', {href: '#/queue/all'}, 'All'), '.');
  show($('queue'), q.items.length > 0);
  const empty = $('queue-empty');
  setText(empty, q.items.length ? '' : (q.filter === 'pending' ? 'All clear. New requests appear here as they arrive.' : 'Nothing to show.'));
  show(empty, q.items.length === 0);
  show($('queue-more'), q.more);
  const pending = q.filter === 'pending' ? q.items.length : 0;
  document.title = (pending ? '(' + pending + ') ' : '') + 'Queue · signoff';
}

function queueRow(r) {
  const a = isObject(r.action) ? r.action : {};
  const summary = actionSummary(a);
  const risks = riskItems(r);
  const tr = el('tr', {class: 'request-row', data: {id: r.id, status: str(r.status)}});
  append(tr,
    el('td', {class: 'cell-action', 'data-label': 'Action'},
      el('span', {class: 'kind'}, str(a.kind) || 'action'), ' ',
      el('a', {class: 'row-link', href: '#/r/' + encodeURIComponent(r.id), title: summary}, truncate(summary, SUMMARY_MAX_CHARS)),
      str(r.intent) ? el('span', {class: 'intent-line'}, truncate(visible(r.intent), SUMMARY_MAX_CHARS)) : null),
    el('td', {'data-label': 'Requester'},
      el('span', null, str(r.requester) || '?'),
      str(r.on_behalf_of) && r.on_behalf_of !== r.requester ? el('span', {class: 'muted small block'}, 'for ' + r.on_behalf_of) : null),
    el('td', {'data-label': 'Environment'}, envBadge(a.environment),
      str(a.resource) ? el('span', {class: 'muted small block'}, visible(a.resource)) : null),
    el('td', {'data-label': 'Risk', class: 'cell-risk'},
      risks.length ? el('ul', {class: 'risk-list'}, risks.map((x) => el('li', {class: x.cls, title: x.title}, x.text)))
        : el('span', {class: 'muted'}, '—')),
    el('td', {'data-label': 'Age'}, str(r.created_at) ? ageEl(r.created_at) : '—'),
    el('td', {'data-label': 'Expires'}, r.status === 'pending' && str(r.expires_at) ? countdownEl(r.expires_at)
      : (str(r.decided_at) ? el('span', {class: 'muted'}, 'decided ', ageEl(r.decided_at)) : el('span', {class: 'muted'}, '—'))),
    el('td', {'data-label': 'Status'}, statusBadge(r.status),
      r.status === 'pending' && !mayReview(r) ? el('span', {class: 'muted small block'}, isObject(r.viewer) && str(r.viewer.reason) ? r.viewer.reason : 'not yours to decide') : null));
  return tr;
}

function onQueueClick(ev) {
  if (ev.target.closest('a, button, input, textarea, select')) return;
  if (window.getSelection && String(window.getSelection()).length) return; /* selecting text */
  const row = ev.target.closest('tr.request-row');
  if (row) location.hash = '#/r/' + encodeURIComponent(row.dataset.id);
}

/* j / k move through the queue, Enter opens (the row's link has the focus). */
function onKeyDown(ev) {
  if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const t = ev.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  if (!state.route || state.route.view !== 'queue') return;
  if (ev.key !== 'j' && ev.key !== 'k') return;
  const links = Array.from(document.querySelectorAll('#queue-body tr.request-row a.row-link'));
  if (!links.length) return;
  const row = document.activeElement ? document.activeElement.closest('tr.request-row') : null;
  let i = row ? links.findIndex((l) => l.closest('tr') === row) : -1;
  if (ev.key === 'j') i = i < 0 ? 0 : Math.min(i + 1, links.length - 1);
  else i = i < 0 ? 0 : Math.max(i - 1, 0);
  ev.preventDefault();
  links[i].focus();
  links[i].closest('tr').scrollIntoView({block: 'nearest'});
}

/* ---------- the request page ---------- */

async function loadRequestPage(quiet) {
  const id = state.route.id;
  const container = $('request');
  const errorNode = $('request-error');
  const seq = ++state.loadSeq;
  if (!REQUEST_ID_RE.test(id)) {
    clear(container);
    setText(errorNode, 'That is not a request id: "' + truncate(visible(id), 80) + '".');
    show(errorNode, true);
    return;
  }
  if (!quiet && (!state.request || state.request.id !== id)) {
    state.request = null;
    state.story = null;
    clear(container);
    container.dataset.id = id;
    append(container, el('h1', {id: 'request-title', tabindex: '-1'}, 'Request ' + id),
      el('p', {class: 'muted'}, 'Loading…'));
    show(errorNode, false);
  }
  const path = '/v1/requests/' + encodeURIComponent(id);
  let r;
  let story;
  try {
    [r, story] = await Promise.all([
      api('GET', path),
      api('GET', path + '/explain').catch((err) => ({error: err})),
    ]);
  } catch (err) {
    if (seq !== state.loadSeq || err.sessionEnded) return;
    if (err instanceof ApiError && err.status === 404) {
      clear(container);
      append(container, el('h1', {id: 'request-title', tabindex: '-1'}, 'Request not found'));
      setText(errorNode, 'There is no request ' + id + ', or you may not see it.');
    } else {
      setText(errorNode, 'Could not load request ' + id + ': ' + describeError(err));
    }
    show(errorNode, true);
    return;
  }
  if (seq !== state.loadSeq) return;
  if (!isObject(r) || typeof r.id !== 'string') {
    setText(errorNode, 'signoffd sent a request this page does not understand.');
    show(errorNode, true);
    return;
  }
  if (story && story.error && story.error.sessionEnded) return;
  show(errorNode, false);
  const previous = state.request;
  state.request = r;
  state.story = story;
  renderRequest();
  if (quiet && previous && previous.id === r.id && previous.status !== r.status) {
    announce('Request ' + r.id + ' is now ' + (STATUS_WORDS[r.status] || r.status) + '.');
  }
}

/* Re-renders the request page from state, keeping focus and a comment being typed. */
function renderRequest() {
  const r = state.request;
  const container = $('request');
  const comment = $('review-comment');
  const saved = comment ? {value: comment.value, start: comment.selectionStart, end: comment.selectionEnd} : null;
  keepFocus(container, () => {
    clear(container);
    container.dataset.id = r.id;
    append(container, requestHeader(r),
      el('div', {class: 'request-grid'},
        el('div', {class: 'request-main'},
          actionSection(r), whoSection(r), intentSection(r), contextSection(r),
          traceSection(r), anomalySection(r), storySection(state.story)),
        el('aside', {class: 'request-side', 'aria-label': 'Decision'}, decisionSection(r))));
  });
  const again = $('review-comment');
  if (saved && again) {
    again.value = saved.value;
    if (document.activeElement === again) again.setSelectionRange(saved.start, saved.end);
  }
  document.title = (r.status === 'pending' ? 'Pending: ' : '') + truncate(actionSummary(r.action), 60) + ' · signoff';
}

function section(id, title, ...kids) {
  return el('section', {id, class: 'panel', 'aria-labelledby': id + '-h'}, el('h2', {id: id + '-h'}, title), ...kids);
}

function dl(pairs) {
  const list = el('dl', {class: 'kv'});
  for (const [k, v] of pairs) {
    if (v === null || v === undefined) continue;
    append(list, el('dt', null, k), el('dd', null, v));
  }
  return list;
}

function requestHeader(r) {
  const a = isObject(r.action) ? r.action : {};
  const line = el('p', {class: 'request-meta'},
    statusBadge(r.status, 'request-status'), ' ',
    el('span', {class: 'kind'}, str(a.kind) || 'action'), ' ',
    envBadge(a.environment), ' ',
    el('code', {class: 'request-id'}, r.id));
  if (r.status === 'pending' && str(r.expires_at)) append(line, ' · expires ', countdownEl(r.expires_at));
  else if (str(r.decided_at)) append(line, ' · decided ', ageEl(r.decided_at));
  return el('header', {class: 'request-head'},
    el('h1', {id: 'request-title', tabindex: '-1'}, truncate(actionSummary(a), 200)), line);
}

/* Action fields shown on their own; every other field of the action is listed below them,
 * since the approval covers the whole action (its digest). */
const ACTION_SHOWN = ['kind', 'command', 'command_line', 'tool', 'server', 'arguments', 'path', 'url', 'environment', 'resource'];

function actionSection(r) {
  const a = isObject(r.action) ? r.action : {};
  const kids = [];
  const pairs = [['Kind', el('code', null, str(a.kind) || '?')]];
  if (str(a.command_line) || Array.isArray(a.command)) {
    const line = str(a.command_line) || shellJoin(a.command.map(String));
    kids.push(el('h3', null, 'Command'), preEl(line, {id: 'request-command', class: 'code command'}));
    if (str(a.command_line) && Array.isArray(a.command)) {
      kids.push(el('h3', null, 'As words (argv)'),
        el('ol', {class: 'argv'}, a.command.map((w) => el('li', null, el('code', null, visible(w))))));
    }
  }
  if ('server' in a) pairs.push(['Server', el('code', null, visible(typeof a.server === 'string' ? a.server : prettyJson(a.server)))]);
  if ('tool' in a) pairs.push(['Tool', el('code', null, visible(typeof a.tool === 'string' ? a.tool : prettyJson(a.tool)))]);
  if ('path' in a) pairs.push(['Path', el('code', null, visible(typeof a.path === 'string' ? a.path : prettyJson(a.path)))]);
  if ('url' in a) pairs.push(['URL', el('code', null, visible(typeof a.url === 'string' ? a.url : prettyJson(a.url)))]);
  pairs.push(['Environment', envBadge(a.environment)]);
  pairs.push(['Resource', 'resource' in a ? el('code', null, visible(typeof a.resource === 'string' ? a.resource : prettyJson(a.resource))) : el('span', {class: 'muted'}, '—')]);
  for (const [k, v] of Object.entries(a)) {
    if (ACTION_SHOWN.includes(k)) continue;
    pairs.push([k, valueEl(v)]);
  }
  if ('arguments' in a) {
    kids.push(el('h3', null, 'Arguments'), preEl(prettyJson(a.arguments), {id: 'request-arguments', class: 'code json'}));
  }
  return section('request-action', 'Action', dl(pairs), ...kids,
    el('p', {class: 'digest muted small'}, 'Digest (an approval is for this exact action): ', el('code', null, str(r.digest) || '?')));
}

function valueEl(v) {
  if (typeof v === 'string') return v.includes('\n') || v.length > 120 ? preEl(v) : el('span', {class: 'value'}, visible(v));
  if (typeof v === 'number' || typeof v === 'boolean') return el('code', null, String(v));
  if (v === null) return el('span', {class: 'muted'}, 'null');
  if (Array.isArray(v) && v.length <= 50 && v.every((x) => typeof x === 'string' && x.length <= 200 && !x.includes('\n'))) {
    return v.length ? el('ul', {class: 'plain-list'}, v.map((x) => el('li', null, el('code', null, visible(x))))) : el('span', {class: 'muted'}, '(none)');
  }
  return preEl(prettyJson(v), {class: 'code json'});
}

function whoSection(r) {
  return section('request-who', 'Who', dl([
    ['Requester', el('strong', null, str(r.requester) || '?')],
    ['On behalf of', str(r.on_behalf_of) ? el('strong', null, r.on_behalf_of) : el('span', {class: 'muted'}, 'nobody named')],
    ['Asked', str(r.created_at) ? el('span', null, timeEl(r.created_at), ' (', ageEl(r.created_at), ')') : null],
  ]));
}

function intentSection(r) {
  return section('request-intent', 'Intent',
    str(r.intent) ? el('p', {class: 'intent'}, visible(r.intent)) : el('p', {class: 'muted'}, 'The requester gave no reason.'));
}

function contextSection(r) {
  const ctx = isObject(r.context) ? r.context : {};
  const keys = Object.keys(ctx);
  const kids = [];
  if (!keys.length) kids.push(el('p', {class: 'muted'}, 'No context was given.'));
  if ('ticket' in ctx) kids.push(el('h3', null, 'Ticket'), el('p', null, ticketEl(ctx.ticket)));
  if ('diff' in ctx) {
    kids.push(el('h3', null, 'Diff'));
    kids.push(typeof ctx.diff === 'string' ? diffEl(ctx.diff) : valueEl(ctx.diff));
  }
  if ('data' in ctx) kids.push(el('h3', null, 'Data touched'), valueEl(ctx.data));
  if ('links' in ctx) kids.push(el('h3', null, 'Links'), linksEl(ctx.links));
  const rest = keys.filter((k) => !['ticket', 'diff', 'data', 'links'].includes(k));
  if (rest.length) {
    kids.push(el('h3', null, 'Other'), dl(rest.map((k) => [k, valueEl(ctx[k])])));
  }
  return section('request-context', 'Context', ...kids);
}

function ticketEl(ticket) {
  if (typeof ticket === 'string' && isHttpUrl(ticket)) {
    return el('a', {id: 'request-ticket', href: ticket, rel: 'noopener noreferrer', target: '_blank'}, visible(ticket));
  }
  if (typeof ticket === 'string' || typeof ticket === 'number') return el('span', {id: 'request-ticket', class: 'ticket'}, visible(String(ticket)));
  return valueEl(ticket);
}

function linksEl(links) {
  if (!Array.isArray(links)) return valueEl(links);
  return el('ul', {class: 'plain-list'}, links.slice(0, 100).map((l) => {
    const url = typeof l === 'string' ? l : isObject(l) ? str(l.url) || str(l.href) : '';
    const label = isObject(l) ? str(l.title) || str(l.label) || url : url;
    if (isHttpUrl(url)) {
      return el('li', null, el('a', {href: url, rel: 'noopener noreferrer', target: '_blank'}, visible(label)),
        label !== url ? el('span', {class: 'muted small'}, ' ' + visible(url)) : null);
    }
    return el('li', null, valueEl(l));
  }));
}

function diffClass(line) {
  if (line.startsWith('+++') || line.startsWith('---') || line.startsWith('diff ') || line.startsWith('index ')) return 'diff-file';
  if (line.startsWith('@@')) return 'diff-hunk';
  if (line.startsWith('+')) return 'diff-add';
  if (line.startsWith('-')) return 'diff-del';
  return 'diff-ctx';
}

function diffEl(text) {
  const lines = text.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');
  const pre = el('pre', {id: 'request-diff', class: 'code diff', tabindex: '0', 'aria-label': 'Diff'});
  const shown = lines.slice(0, DIFF_MAX_LINES);
  for (const line of shown) {
    pre.appendChild(el('span', {class: 'diff-line ' + diffClass(line)}, visible(line.length > 10000 ? line.slice(0, 10000) + '…' : line) || ' '));
  }
  const adds = lines.filter((l) => diffClass(l) === 'diff-add').length;
  const dels = lines.filter((l) => diffClass(l) === 'diff-del').length;
  return el('div', {class: 'diff-wrap'},
    el('p', {class: 'muted small'}, el('span', {class: 'diff-count-add'}, '+' + adds), ' ', el('span', {class: 'diff-count-del'}, '−' + dels), ' lines'),
    pre,
    lines.length > DIFF_MAX_LINES ? el('p', {class: 'muted small'}, (lines.length - DIFF_MAX_LINES) + ' more lines not shown.') : null,
    hasInvisible(text) ? el('p', {class: 'warn'}, 'This diff holds invisible or direction-changing characters, shown as ⟨U+…⟩.') : null);
}

function traceSection(r) {
  const d = isObject(r.decision) ? r.decision : {};
  const rules = Array.isArray(d.rules) ? d.rules.filter(isObject) : [];
  const list = el('ol', {class: 'trace'});
  for (const rule of rules) {
    append(list, el('li', null,
      el('span', {class: 'rule-name'}, str(rule.name) || '?'), ' ',
      el('span', {class: 'badge decide-' + (str(rule.decide) || 'x').replace(/[^a-z]/g, '')}, str(rule.decide) || '?'),
      str(rule.reason) ? el('p', {class: 'rule-reason'}, rule.reason) : null,
      rule.matched === 'unknown' ? el('p', {class: 'warn'}, 'Could not be decided' + (str(rule.why) ? ': ' + rule.why : '') + '; a review rule applies when unsure.') : null,
      rule.matched === 'default' ? el('p', {class: 'muted small'}, 'No rule matched; this is the default.') : null,
      str(rule.when) ? el('details', {class: 'rule-when'}, el('summary', null, 'Condition'), preEl(rule.when)) : null));
  }
  return section('request-trace', 'Policy',
    el('p', null, 'Outcome: ', el('strong', null, str(d.outcome) || '?'),
      d.owner_may_approve === true ? el('span', {class: 'muted'}, ' · the agent\'s owner may approve') : null),
    rules.length ? list : el('p', {class: 'muted'}, 'No rules listed.'),
    str(d.policy_version) ? el('p', {class: 'muted small'}, 'Policy version ', el('code', {title: d.policy_version}, shortHex(d.policy_version, 19))) : null);
}

function anomalySection(r) {
  const reasons = anomalyReasons(r);
  const score = r.anomaly && typeof r.anomaly.score === 'number' ? r.anomaly.score : null;
  return section('request-anomaly', 'Anomalies',
    reasons.length ? el('ul', {class: 'risk-list'}, reasons.map((x) => el('li', {class: 'risk-anomaly'}, x)))
      : el('p', {class: 'muted'}, 'Nothing unusual was noticed for this requester.'),
    score !== null && score > 0 ? el('p', {class: 'muted small'}, 'Score ' + score) : null);
}

function storySection(story) {
  if (!story) return section('request-story', 'Story', el('p', {class: 'muted'}, 'Loading…'));
  if (story.error) {
    return section('request-story', 'Story', el('p', {class: 'muted'}, 'The story could not be loaded: ' + describeError(story.error)));
  }
  return section('request-story', 'Story', storyEl(story));
}

function storyEl(story) {
  const lines = Array.isArray(story.story) ? story.story.filter((s) => typeof s === 'string') : [];
  const events = Array.isArray(story.events) ? story.events.filter(isObject) : [];
  const list = el('ol', {class: 'story'});
  let last = null;
  for (const line of lines) {
    if (/^\s/.test(line) && last) {
      /* an indented sentence details the one before it */
      let sub = last.querySelector('ul');
      if (!sub) sub = last.appendChild(el('ul', {class: 'story-sub'}));
      append(sub, el('li', null, visible(line.trim())));
      continue;
    }
    last = el('li', null, visible(line.trim()));
    append(list, last);
  }
  const cp = isObject(story.checkpoint) ? story.checkpoint : null;
  return el('div', {class: 'history-story'},
    lines.length ? list : el('p', {class: 'muted'}, 'No story yet.'),
    events.length ? el('details', {class: 'events'}, el('summary', null, 'Audit events (' + events.length + ')'),
      eventsTable(events, false)) : null,
    cp ? el('p', {class: 'muted small'}, 'Under signed checkpoint ' + cp.size + ' (root ', el('code', {title: str(cp.root)}, shortHex(cp.root, 16)), ', key ', el('code', null, str(cp.key_id)), ').') : null);
}

function decisionSection(r) {
  const kids = [reviewsEl(r), expiryEl(r)];
  if (mayReview(r)) {
    const busy = state.reviewBusy;
    kids.push(el('form', {class: 'review-form', id: 'review-form', novalidate: true, on: {submit: (ev) => ev.preventDefault()}},
      el('label', {for: 'review-comment'}, 'Comment ', el('span', {class: 'muted'}, '(optional, recorded in the audit log)')),
      el('textarea', {id: 'review-comment', rows: '3', maxlength: String(COMMENT_MAX_BYTES), 'aria-describedby': 'review-error'}),
      el('div', {class: 'review-buttons'},
        el('button', {type: 'button', id: 'approve-button', class: 'button-approve', disabled: busy, on: {click: () => review('approve')}}, 'Approve'),
        el('button', {type: 'button', id: 'deny-button', class: 'button-deny', disabled: busy, on: {click: () => review('deny')}}, 'Deny')),
      el('p', {class: 'muted small'}, 'Deny is final. Approve allows exactly this action, once.')));
  } else {
    kids.push(el('p', {id: 'no-review-reason', class: 'no-review'}, noReviewReason(r)));
  }
  kids.push(el('p', {id: 'review-error', class: 'form-error', role: 'alert'}, state.reviewError));
  return section('request-decide', 'Decision', ...kids);
}

function requirementText(req) {
  const count = typeof req.count === 'number' ? req.count : 1;
  let from;
  if (str(req.group)) from = 'group ' + req.group;
  else if (Array.isArray(req.principals)) from = 'one of ' + req.principals.join(', ');
  else from = 'eligible reviewers';
  return count + ' approval' + (count === 1 ? '' : 's') + ' from ' + from;
}

function reviewsEl(r) {
  const reviews = Array.isArray(r.reviews) ? r.reviews.filter(isObject) : [];
  const reqs = r.decision && Array.isArray(r.decision.requirements) ? r.decision.requirements.filter(isObject) : [];
  const list = el('ul', {class: 'reviews'});
  for (const rv of reviews) {
    const approve = rv.decision === 'approve';
    append(list, el('li', {class: approve ? 'review-approve' : 'review-deny'},
      el('strong', null, str(rv.reviewer) || '?'), ' ', approve ? 'approved' : 'denied',
      str(rv.channel) ? el('span', {class: 'muted'}, ' via ' + rv.channel) : null,
      str(rv.at) ? el('span', {class: 'muted'}, ' · ', ageEl(rv.at)) : null,
      str(rv.comment) ? el('q', {class: 'comment'}, visible(rv.comment)) : null));
  }
  const needed = el('ul', {id: 'request-needed', class: 'needed'});
  let missing = 0;
  for (const req of reqs) {
    const by = Array.isArray(req.approved_by) ? req.approved_by.filter((x) => typeof x === 'string') : [];
    const count = typeof req.count === 'number' ? req.count : 1;
    const left = Math.max(0, count - by.length);
    missing += left;
    const esc = isObject(req.escalation) ? req.escalation : null;
    append(needed, el('li', {class: left ? 'need-open' : 'need-met'},
      requirementText(req), ': ',
      by.length ? 'approved by ' + by.join(', ') : 'none yet',
      left && r.status === 'pending' ? el('strong', null, ' — ' + left + ' more needed') : (left ? null : ' — met'),
      esc && str(esc.to_group) ? el('span', {class: 'muted small block'},
        esc.escalated ? 'Escalated to group ' + esc.to_group + '.' : 'Escalates to group ' + esc.to_group + (str(esc.at) ? ' at ' + fmtLocal(esc.at) : '') + '.') : null));
  }
  return el('div', {id: 'request-reviews'},
    el('h3', null, 'Reviews so far'),
    reviews.length ? list : el('p', {class: 'muted'}, 'No reviews yet.'),
    reqs.length ? el('h3', null, r.status === 'pending' ? (missing ? 'Who else must approve' : 'Approvals') : 'Approvals required') : null,
    reqs.length ? needed : null);
}

function expiryEl(r) {
  const rows = [];
  if (r.status === 'pending' && str(r.expires_at)) rows.push(['Expires', el('span', null, countdownEl(r.expires_at), el('span', {class: 'muted small block'}, fmtLocal(r.expires_at)))]);
  else if (str(r.expires_at) && r.status === 'expired') rows.push(['Expired', timeEl(r.expires_at)]);
  if (str(r.decided_at)) rows.push(['Decided', timeEl(r.decided_at)]);
  if (str(r.grant_expires_at) && r.status === 'approved') rows.push(['Grant valid until', timeEl(r.grant_expires_at)]);
  if (str(r.claimed_at)) rows.push(['Started', timeEl(r.claimed_at)]);
  if (str(r.finished_at)) rows.push(['Finished', timeEl(r.finished_at)]);
  if (isObject(r.result)) {
    rows.push(['Exit code', el('code', null, String(r.result.exit_code))]);
    if (str(r.result.detail)) rows.push(['Detail', preEl(r.result.detail)]);
  }
  return el('div', {id: 'request-expiry'}, dl(rows));
}

async function review(decision) {
  const r = state.request;
  if (!r || state.reviewBusy) return;
  const commentNode = $('review-comment');
  const comment = commentNode ? commentNode.value : '';
  const errorNode = $('review-error');
  if (new TextEncoder().encode(comment).length > COMMENT_MAX_BYTES) {
    setText(errorNode, 'The comment is too long: at most ' + COMMENT_MAX_BYTES + ' bytes.');
    return;
  }
  state.reviewBusy = true;
  state.reviewError = '';
  setText(errorNode, '');
  const approve = $('approve-button');
  const deny = $('deny-button');
  if (approve) approve.disabled = true;
  if (deny) deny.disabled = true;
  const pressed = decision === 'approve' ? approve : deny;
  if (pressed) setText(pressed, decision === 'approve' ? 'Approving…' : 'Denying…');
  let after = null;
  try {
    const body = {decision};
    if (comment.trim()) body.comment = comment;
    after = await api('POST', '/v1/requests/' + encodeURIComponent(r.id) + '/reviews', body);
  } catch (err) {
    state.reviewBusy = false;
    if (err.sessionEnded) return;
    state.reviewError = 'Your ' + (decision === 'approve' ? 'approval' : 'denial') + ' was not recorded: ' + describeError(err);
    if (approve) { approve.disabled = false; setText(approve, 'Approve'); }
    if (deny) { deny.disabled = false; setText(deny, 'Deny'); }
    setText(errorNode, state.reviewError);
    /* the request may have moved on (decided elsewhere, expired): show it as it is now */
    if (err instanceof ApiError && (err.status === 409 || err.status === 403)) scheduleRefresh();
    return;
  }
  state.reviewBusy = false;
  if (state.route && state.route.view === 'request' && state.route.id === r.id) {
    if (isObject(after) && after.id === r.id && isObject(after.viewer)) {
      state.request = after;
      renderRequest();
    }
    scheduleRefresh(); /* the story and, if the answer lacked it, the viewer */
    announce('You ' + (decision === 'approve' ? 'approved' : 'denied') + ' request ' + r.id + '; it is now ' +
      (isObject(after) ? STATUS_WORDS[after.status] || after.status : 'updated') + '.');
    const heading = $('request-title');
    if (heading) heading.focus();
  }
}

/* ---------- history ---------- */

async function loadHistory(quiet) {
  const h = state.history;
  const seq = ++state.loadSeq;
  const errorNode = $('history-error');
  if (!quiet && !h.items.length) {
    clear($('history'));
    append($('history'), el('p', {class: 'muted'}, 'Loading…'));
  }
  let result;
  try {
    result = await loadRequests(null, h.want, (r) => r.status !== 'pending');
  } catch (err) {
    if (seq !== state.loadSeq || err.sessionEnded) return;
    setText(errorNode, 'Could not load the history: ' + describeError(err));
    show(errorNode, true);
    return;
  }
  if (seq !== state.loadSeq) return;
  show(errorNode, false);
  h.items = result.items;
  h.more = result.more;
  renderHistory();
  for (const id of h.open) if (!h.stories.has(id)) loadStory(id);
}

function renderHistory() {
  const h = state.history;
  const container = $('history');
  keepFocus(container, () => {
    clear(container);
    if (!h.items.length) append(container, el('p', {class: 'empty'}, 'No decided requests yet.'));
    for (const r of h.items) container.appendChild(historyItem(r));
  });
  show($('history-more'), h.more);
  document.title = 'History · signoff';
}

function historyItem(r) {
  const a = isObject(r.action) ? r.action : {};
  const h = state.history;
  const item = el('details', {class: 'history-item', data: {id: r.id, status: str(r.status)}, open: h.open.has(r.id)},
    el('summary', null,
      statusBadge(r.status), ' ',
      el('span', {class: 'kind'}, str(a.kind) || 'action'), ' ',
      el('span', {class: 'history-summary'}, truncate(actionSummary(a), SUMMARY_MAX_CHARS)), ' ',
      el('span', {class: 'muted small'}, requesterText(r), str(a.environment) ? ' · ' + a.environment : '',
        str(r.decided_at) ? [' · decided ', ageEl(r.decided_at)] : str(r.created_at) ? [' · asked ', ageEl(r.created_at)] : null)),
    el('div', {class: 'history-body'},
      el('p', null, el('a', {href: '#/r/' + encodeURIComponent(r.id)}, 'Open the request page'), ' ', el('code', {class: 'muted small'}, r.id)),
      historyStoryEl(r.id)));
  item.addEventListener('toggle', () => {
    if (item.open) {
      h.open.add(r.id);
      if (!h.stories.has(r.id)) loadStory(r.id);
    } else {
      h.open.delete(r.id);
    }
  });
  return item;
}

function historyStoryEl(id) {
  const story = state.history.stories.get(id);
  const holder = el('div', {class: 'history-story-holder'});
  if (!story) append(holder, el('p', {class: 'muted'}, 'Loading the story…'));
  else if (story.error) append(holder, el('p', {class: 'muted'}, 'The story could not be loaded: ' + describeError(story.error)));
  else append(holder, storyEl(story));
  return holder;
}

async function loadStory(id) {
  const loading = state.history.loading;
  if (loading.has(id)) return;
  loading.add(id);
  let story;
  try {
    story = await api('GET', '/v1/requests/' + encodeURIComponent(id) + '/explain');
    if (!isObject(story)) story = {error: new ApiError(200, 'bad_answer', 'signoffd sent a story this page does not understand.')};
  } catch (err) {
    story = {error: err};
  } finally {
    loading.delete(id);
  }
  if (!state.session || (story.error && story.error.sessionEnded)) return;
  state.history.stories.set(id, story);
  const item = document.querySelector('#history details.history-item[data-id="' + cssEscape(id) + '"]');
  if (!item) return;
  const holder = item.querySelector('.history-story-holder');
  if (holder) holder.replaceWith(historyStoryEl(id));
}

/* ---------- audit ---------- */

async function loadAudit(quiet) {
  const seq = ++state.loadSeq;
  const errorNode = $('audit-error');
  if (quiet) {
    /* a live update: only the events page, and only when it shows the newest events */
    if (state.audit.atEnd) await loadAuditEvents(state.audit.after, seq, false);
    return;
  }
  show(errorNode, false);
  setText($('audit-verify-status'), 'Checking…');
  delete $('audit-verify-status').dataset.ok;
  const [verify, checkpoint] = await Promise.all([
    api('GET', '/v1/audit/verify').catch((err) => ({error: err})),
    api('GET', '/v1/audit/checkpoint').catch((err) => ({error: err})),
  ]);
  if (seq !== state.loadSeq) return;
  const refused = [verify, checkpoint].map((x) => x && x.error).find((e) => e instanceof ApiError && e.status === 403);
  if ([verify, checkpoint].some((x) => x && x.error && x.error.sessionEnded)) return;
  if (refused) {
    show($('audit-body'), false);
    setText(errorNode, 'The audit log is open to auditors and admins only, and you are not one of them. ' +
      'You can still read the story of any request you may see on its page or under History. (' + refused.message + ')');
    errorNode.className = 'notice';
    show(errorNode, true);
    return;
  }
  errorNode.className = 'notice notice-bad';
  show($('audit-body'), true);
  renderVerify(verify);
  renderCheckpoint(checkpoint);
  let after = 0;
  if (isObject(verify) && !verify.error) {
    const guess = Math.max(num(verify.signed_size) + num(verify.unsigned_tail), num(verify.events) + num(verify.archived_through),
      isObject(checkpoint) ? num(checkpoint.size) : 0);
    after = Math.max(0, guess - AUDIT_PAGE);
  }
  await loadAuditEvents(after, seq, true);
}

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

async function reverify() {
  const node = $('audit-verify-status');
  const button = $('audit-verify-again');
  button.disabled = true;
  setText(node, 'Checking…');
  delete node.dataset.ok;
  let verify;
  try {
    verify = await api('GET', '/v1/audit/verify');
  } catch (err) {
    verify = {error: err};
  }
  button.disabled = false;
  if (verify.error && verify.error.sessionEnded) return;
  renderVerify(verify);
  announce(node.textContent);
}

function renderVerify(v) {
  const node = $('audit-verify-status');
  clear(node);
  if (!isObject(v) || v.error) {
    delete node.dataset.ok;
    node.className = 'verify verify-unknown';
    append(node, el('strong', null, 'Not checked: '), v && v.error ? describeError(v.error) : 'no answer.');
    return;
  }
  const ok = v.ok === true;
  node.dataset.ok = String(ok);
  node.className = 'verify ' + (ok ? 'verify-ok' : 'verify-bad');
  const counts = num(v.events) + ' event' + (num(v.events) === 1 ? '' : 's') + ', ' +
    num(v.checkpoints) + ' checkpoint signature' + (num(v.checkpoints) === 1 ? '' : 's') + ' verified; signed through event ' + num(v.signed_size) +
    (num(v.unsigned_tail) ? ', ' + num(v.unsigned_tail) + ' newer event' + (num(v.unsigned_tail) === 1 ? '' : 's') + ' not yet under a checkpoint' : '') +
    (num(v.archived_through) ? '; archived through event ' + num(v.archived_through) : '') + '.';
  if (ok) {
    append(node, el('strong', null, '✓ The log verifies. '), counts);
  } else {
    append(node, el('strong', null, '✗ The log does NOT verify'),
      typeof v.first_bad_seq === 'number' ? ' at event ' + v.first_bad_seq : '', '. ',
      str(v.reason) ? el('span', null, v.reason + '. ') : null,
      el('span', {class: 'small block'}, 'Before the failure: ' + counts));
  }
}

function renderCheckpoint(cp) {
  const node = $('audit-checkpoint');
  clear(node);
  if (cp && cp.error) {
    if (cp.error instanceof ApiError && cp.error.status === 404) append(node, el('p', {class: 'muted'}, 'No checkpoint has been signed yet.'));
    else append(node, el('p', {class: 'muted'}, 'Could not load the checkpoint: ' + describeError(cp.error)));
    return;
  }
  if (!isObject(cp)) {
    append(node, el('p', {class: 'muted'}, 'No checkpoint.'));
    return;
  }
  append(node, dl([
    ['Events covered', el('strong', null, String(cp.size))],
    ['Signed at', str(cp.at) ? el('span', null, timeEl(cp.at), ' (', ageEl(cp.at), ')') : '—'],
    ['Key id', el('code', null, str(cp.key_id))],
    ['Merkle root', el('code', {class: 'hex'}, str(cp.root))],
    ['Signature', el('code', {class: 'hex'}, str(cp.signature))],
  ]));
}

/* Loads one page of events after `after`; when `toEnd`, follows `next` (bounded) to reach the
 * newest page. */
async function loadAuditEvents(after, seq, toEnd) {
  const a = state.audit;
  let page;
  let from = after;
  let calls = 0;
  try {
    for (;;) {
      page = await api('GET', '/v1/audit?after=' + from + '&limit=' + AUDIT_PAGE);
      calls++;
      const next = isObject(page) && typeof page.next === 'number' ? page.next : null;
      if (!toEnd || next === null || calls >= AUDIT_MAX_CALLS) break;
      from = next;
    }
  } catch (err) {
    if (seq !== state.loadSeq || err.sessionEnded) return;
    if (err instanceof ApiError && err.status === 403) {
      show($('audit-body'), false);
      const node = $('audit-error');
      node.className = 'notice';
      setText(node, 'The audit log is open to auditors and admins only, and you are not one of them. (' + err.message + ')');
      show(node, true);
      return;
    }
    const node = $('audit-events-note');
    setText(node, 'Could not load the events: ' + describeError(err));
    return;
  }
  if (seq !== state.loadSeq) return;
  a.after = from;
  a.events = isObject(page) && Array.isArray(page.events) ? page.events.filter(isObject) : [];
  a.next = isObject(page) && typeof page.next === 'number' ? page.next : null;
  a.atEnd = a.next === null;
  renderAuditEvents();
}

function renderAuditEvents() {
  const a = state.audit;
  const body = $('audit-events-body');
  keepFocus($('audit-events'), () => {
    clear(body);
    for (const ev of a.events.slice().reverse()) body.appendChild(eventRow(ev, true));
  });
  const first = a.events.length ? a.events[0].seq : null;
  const last = a.events.length ? a.events[a.events.length - 1].seq : null;
  setText($('audit-events-note'), a.events.length ? 'Events ' + first + ' to ' + last + ', newest first.' : 'No events here.');
  $('audit-older').disabled = !(typeof first === 'number' && first > 1);
  $('audit-newer').disabled = a.atEnd;
}

function eventRow(ev, withData) {
  const rid = str(ev.request_id);
  return el('tr', {class: 'event-row', data: {seq: ev.seq}},
    el('td', {'data-label': 'Seq'}, String(ev.seq)),
    el('td', {'data-label': 'Time'}, str(ev.at) ? timeEl(ev.at) : '—'),
    el('td', {'data-label': 'Type'}, el('code', null, str(ev.type))),
    withData ? el('td', {'data-label': 'Request'}, rid && REQUEST_ID_RE.test(rid) ? el('a', {href: '#/r/' + encodeURIComponent(rid)}, rid) : el('span', {class: 'muted'}, '—')) : null,
    el('td', {'data-label': 'Actor'}, str(ev.actor) || el('span', {class: 'muted'}, 'signoff')),
    withData ? el('td', {'data-label': 'Data'}, 'data' in ev ? el('details', null, el('summary', null, 'show'), preEl(prettyJson(ev.data), {class: 'code json'})) : '—') : null,
    el('td', {'data-label': 'Hash'}, el('code', {title: str(ev.hash)}, shortHex(ev.hash, 12))));
}

function eventsTable(events, withData) {
  return el('div', {class: 'table-wrap'}, el('table', {class: 'events-table'},
    el('thead', null, el('tr', null,
      el('th', {scope: 'col'}, 'Seq'), el('th', {scope: 'col'}, 'Time'), el('th', {scope: 'col'}, 'Type'),
      withData ? el('th', {scope: 'col'}, 'Request') : null,
      el('th', {scope: 'col'}, 'Actor'),
      withData ? el('th', {scope: 'col'}, 'Data') : null,
      el('th', {scope: 'col'}, 'Hash'))),
    el('tbody', null, events.map((ev) => eventRow(ev, withData)))));
}

function auditOlder() {
  const a = state.audit;
  const first = a.events.length ? a.events[0].seq : 1;
  loadAuditEvents(Math.max(0, first - 1 - AUDIT_PAGE), ++state.loadSeq, false);
}

function auditNewer() {
  const a = state.audit;
  if (a.next === null) return;
  loadAuditEvents(a.next, ++state.loadSeq, false);
}

/* ---------- wiring ---------- */

function wireStatic() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout-button').addEventListener('click', signOut);
  $('skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('main').focus();
  });
  for (const f of FILTERS) {
    $('filter-' + f).addEventListener('click', () => {
      location.hash = f === 'pending' ? '#/queue' : '#/queue/' + f;
    });
  }
  $('queue-body').addEventListener('click', onQueueClick);
  $('queue-more').addEventListener('click', () => {
    state.queue.want += LIST_STEP;
    loadQueue(false);
  });
  $('history-more').addEventListener('click', () => {
    state.history.want += LIST_STEP;
    loadHistory(false);
  });
  $('audit-verify-again').addEventListener('click', reverify);
  $('audit-older').addEventListener('click', auditOlder);
  $('audit-newer').addEventListener('click', auditNewer);
  document.addEventListener('keydown', onKeyDown);
  window.addEventListener('hashchange', () => route(true));
  window.addEventListener('error', (ev) => showGlobalError('Something went wrong in this page: ' + (ev.message || 'unknown error') + '. Reloading may help.'));
  window.addEventListener('unhandledrejection', (ev) => {
    const err = ev.reason;
    if (err && err.sessionEnded) return;
    showGlobalError(describeError(err));
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
