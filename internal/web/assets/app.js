// tend's dashboard: one server-sent-events stream drives the table and
// the charts, another follows logs; actions go through POST /api/<action>
// with the session's CSRF token.
'use strict';

const $ = (sel) => document.querySelector(sel);
const HOUR = 3600e3;
const MAX_LOG_LINES = 2000;
const SHAPES = { online: '●', launching: '◐', waiting: '◷', stopping: '▽', stopped: '■', completed: '✔', errored: '✖' };
const HEALTH = { healthy: '✓', failing: '!', unhealthy: '✖' };

let csrf = '';
let readOnly = false;
const insts = new Map(); // id -> instance, as GET /v1/instances gives it
let points = []; // [[ms, cpu, bytes, connections/s]] of the last hour, of instance pointsOf
let pointsOf = null;
const lastConns = new Map(); // id -> [ms, connections handed out], the last time and the highest count
const apps = new Map(); // app name -> {body, head, rows: Map(id -> tr)}
let selected = null; // the instance id the charts show

function say(text) { $('#msg').textContent = text; }

async function openSession() {
  const m = location.hash.match(/token=([A-Za-z0-9_-]+)/);
  let r;
  if (m) {
    history.replaceState(null, '', location.pathname); // the token is spent
    r = await fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: m[1] }) });
  } else {
    r = await fetch('/api/session');
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    say(body.message || 'No session: open the URL tend web prints.');
    $('#conn').textContent = 'not signed in';
    return false;
  }
  csrf = body.csrf;
  readOnly = body.read_only;
  $('#ro-badge').hidden = !readOnly;
  return true;
}

function setConn(text, state) {
  const conn = $('#conn');
  conn.textContent = text;
  conn.className = 'conn ' + state;
}

// The live view. When the daemon goes away (a crash, tend update) the
// stream ends; the page shows that it is reconnecting and comes back by
// itself once a daemon serves the dashboard again: the browser retries
// the stream, and where it gives up, reconnect does.
let retryMs = 500;

function connect() {
  const es = new EventSource('/api/stream');
  es.onopen = () => { retryMs = 500; setConn('live', 'live'); };
  es.onerror = () => {
    setConn('reconnecting…', 'wait');
    if (es.readyState === EventSource.CLOSED) setTimeout(reconnect, retryMs);
  };
  es.addEventListener('snapshot', (e) => {
    const d = JSON.parse(e.data);
    lastConns.clear();
    setAll(d.instances);
    loadHistory();
    renderReloads(d.reloads || []);
  });
  es.addEventListener('reloads', (e) => renderReloads(JSON.parse(e.data)));
  es.addEventListener('stats', (e) => {
    const d = JSON.parse(e.data);
    for (const i of d.instances) {
      const c = i.connections || 0;
      const prev = lastConns.get(i.id);
      // The highest count seen: the count dips for a moment when a
      // process exits, and coming back is no new connection (History).
      lastConns.set(i.id, [d.now, prev ? Math.max(prev[1], c) : c]);
      if (!i.pid || i.id !== pointsOf) continue;
      // Connections per second since the last figures: what the count
      // grew beyond the highest it had been.
      const rate = prev && c > prev[1] && d.now > prev[0] ? (c - prev[1]) / ((d.now - prev[0]) / 1000) : 0;
      points.push([d.now, i.cpu, i.memory, rate]);
      while (points.length && points[0][0] < d.now - HOUR) points.shift();
    }
    setAll(d.instances);
  });
  es.addEventListener('instance', (e) => {
    const ev = JSON.parse(e.data);
    const i = insts.get(ev.id) || { id: ev.id, name: ev.app, instance: ev.instance, mode: '', cpu: 0, memory: 0 };
    if (i.pid !== ev.pid) { i.uptime_ms = 0; i.cpu = 0; i.memory = 0; }
    Object.assign(i, { pid: ev.pid, status: ev.status, ready: ev.ready, restarts: ev.restarts, health: ev.health, problem: ev.problem });
    if (ev.port) i.port = ev.port;
    insts.set(ev.id, i);
    renderSoon();
  });
  es.addEventListener('removed', (e) => { insts.delete(JSON.parse(e.data).id); renderSoon(); });
}

// reconnect opens the stream again once the session answers: a session
// that is gone (401) will not come back, anything else may.
async function reconnect() {
  retryMs = Math.min(retryMs * 2, 4000);
  let r;
  try { r = await fetch('/api/session'); } catch { setTimeout(reconnect, retryMs); return; }
  if (r.status === 401) {
    const body = await r.json().catch(() => ({}));
    setConn('signed out', 'down');
    say(body.message || 'The session ended: open a new URL from tend web.');
    return;
  }
  if (!r.ok) { setTimeout(reconnect, retryMs); return; }
  connect();
}

// renderSoon renders once before the next frame, however many events
// come first: a reload of a hundred instances sends hundreds.
let renderPending = false;

function renderSoon() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; render(); });
}

function setAll(list) {
  insts.clear();
  for (const i of list) insts.set(i.id, i);
  render();
}

function fmtBytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  const k = Math.min(Math.floor(Math.log(n) / Math.log(1024)), u.length - 1);
  return (n / 1024 ** k).toFixed(k ? 1 : 0) + ' ' + u[k];
}

function fmtUptime(ms, status) {
  if (!ms || status !== 'online') return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h';
  return Math.floor(s / 86400) + 'd';
}

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const k of kids) e.append(k);
  return e;
}

function button(label, title, onclick) {
  const b = el('button', { type: 'button', textContent: label, title });
  b.setAttribute('aria-label', title);
  b.addEventListener('click', onclick);
  b.dataset.acts = '1';
  b.disabled = readOnly;
  return b;
}

// appGroup returns the tbody of an app: a heading row with the app's
// actions, then a row per instance. Built once, so focus stays put.
function appGroup(name) {
  let g = apps.get(name);
  if (g) return g;
  const scaleInput = el('input', { type: 'number', min: '1', max: '1000', value: '1', disabled: readOnly });
  scaleInput.setAttribute('aria-label', 'instances of ' + name);
  scaleInput.className = 'scale-n';
  // A message as tend send takes it: JSON, or else the text as a string.
  const msgInput = el('input', { type: 'text', placeholder: '{"reload_config":true}', disabled: readOnly });
  msgInput.setAttribute('aria-label', 'message to ' + name);
  msgInput.className = 'msg-in';
  const actions = el('div', { className: 'actions' },
    button('Restart', 'restart ' + name, () => act('restart', { targets: [name] }, 'restart ' + name)),
    button('Reload', 'reload ' + name, () => act('reload', { targets: [name] }, 'reload ' + name)),
    button('Stop', 'stop ' + name, () => act('stop', { targets: [name] }, 'stop ' + name)),
    button('Start', 'start ' + name, () => act('start', { targets: [name] }, 'start ' + name)),
    scaleInput,
    button('Scale', 'scale ' + name, () => act('scale', { app: name, count: Number(scaleInput.value) }, `scale ${name} to ${scaleInput.value}`)),
    msgInput,
    button('Send', 'send a message to ' + name, () => act('send', { targets: [name], message: jsonOf(msgInput.value) }, `send ${msgInput.value} to ${name}`)));
  const head = el('tr', { className: 'app' }, el('td', { colSpan: 3, textContent: name }), el('td', { colSpan: 11 }, actions));
  head.dataset.app = name;
  // Filled before render puts it in the page: one layout, not one a row.
  const body = el('tbody', {}, head);
  g = { body, head, scaleInput, rows: new Map() };
  apps.set(name, g);
  return g;
}

const COLS = ['id', 'app', 'idx', 'status', 'health', 'pid', 'uptime', 'restarts', 'cpu', 'memory', 'conns', 'port', 'mode'];

function instRow(g, i) {
  let tr = g.rows.get(i.id);
  if (tr) return tr;
  tr = el('tr', { className: 'inst' });
  tr.dataset.id = i.id;
  tr.byCol = {}; // by column, with the text each shows (td.shown)
  for (const c of COLS) {
    const td = el('td', { className: c });
    if (['restarts', 'cpu', 'memory', 'conns', 'pid'].includes(c)) td.classList.add('num');
    tr.byCol[c] = td;
    tr.append(td);
  }
  const label = `${i.name}[${i.instance}]`;
  // One button a row: a thousand rows of buttons are most of the page's
  // layout. The instance's own actions are by its charts (show).
  tr.append(el('td', { className: 'row-acts' },
    el('button', { type: 'button', textContent: 'Show', title: `charts, logs and actions of ${label}`, onclick: () => show(i.id) })));
  g.rows.set(i.id, tr);
  return tr;
}

// setCell changes what a cell shows, and only when it changed: with a
// thousand rows, untouched cells cost no layout.
function setCell(tr, cls, text, extra) {
  const td = tr.byCol[cls];
  if (td.shown !== text) { td.shown = text; td.textContent = text; }
  if (extra !== undefined && td.dataset.v !== extra) { td.dataset.v = extra; td.className = cls + ' ' + extra; }
}

function render() {
  const byApp = new Map();
  for (const i of [...insts.values()].sort((a, b) => a.id - b.id)) {
    if (!byApp.has(i.name)) byApp.set(i.name, []);
    byApp.get(i.name).push(i);
  }
  for (const [name, g] of apps) {
    if (!byApp.has(name)) { g.body.remove(); apps.delete(name); }
  }
  for (const [name, list] of byApp) {
    const g = appGroup(name);
    if (document.activeElement !== g.scaleInput) g.scaleInput.value = list.length;
    const keep = new Set(list.map((i) => i.id));
    for (const [id, tr] of g.rows) if (!keep.has(id)) { tr.remove(); g.rows.delete(id); }
    let after = g.head;
    for (const i of list) {
      const tr = instRow(g, i);
      if (after.nextSibling !== tr) after.after(tr);
      after = tr;
      setCell(tr, 'id', String(i.id));
      setCell(tr, 'app', i.name);
      setCell(tr, 'idx', String(i.instance));
      setCell(tr, 'status', `${SHAPES[i.status] || '?'} ${i.status}${i.problem ? ': ' + i.problem : ''}`, 'st-' + i.status);
      setCell(tr, 'health', i.health ? `${HEALTH[i.health] || ''} ${i.health}` : '—', 'h-' + (i.health || 'none'));
      setCell(tr, 'pid', i.pid ? String(i.pid) : '—');
      setCell(tr, 'uptime', fmtUptime(i.uptime_ms, i.status));
      setCell(tr, 'restarts', String(i.restarts));
      setCell(tr, 'cpu', i.pid ? i.cpu.toFixed(1) + '%' : '—');
      setCell(tr, 'memory', i.pid ? fmtBytes(i.memory) : '—');
      setCell(tr, 'conns', i.connections ? String(i.connections) : '—');
      setCell(tr, 'port', i.port ? String(i.port) : '—');
      setCell(tr, 'mode', i.sched ? `${i.mode}/${i.sched}` : i.mode || '');
    }
    if (!g.body.isConnected) $('#instances').append(g.body);
  }
  $('#empty').hidden = insts.size > 0;
  if (selected === null || !insts.has(selected)) {
    selected = insts.size ? Math.min(...insts.keys()) : null;
    loadHistory();
  }
  renderTargets();
  renderCharts();
}

// loadHistory asks the daemon for the charts' points of the selected
// instance. After a daemon restart the new daemon's history begins when
// it did: the page keeps the points it had from before.
async function loadHistory() {
  const id = selected;
  let pts = [];
  if (id !== null) {
    try {
      const r = await fetch('/api/history?id=' + id);
      if (r.ok) pts = await r.json();
    } catch { /* the daemon is away: the stream reconnects, and asks again */ }
  }
  if (selected !== id) return; // another was chosen meanwhile
  const first = pts.length ? pts[0][0] : Infinity;
  const kept = pointsOf === id ? points.filter((p) => p[0] < first && p[0] >= Date.now() - HOUR) : [];
  points = kept.concat(pts);
  pointsOf = id;
  renderCharts();
}

// show charts instance id and follows its logs. Its charts and actions
// are after the table: the focus goes there (and the page scrolls), or
// with a thousand rows a keyboard would reach its Restart a thousand
// Tabs later, and a click would seem to do nothing.
function show(id) {
  selected = id;
  loadHistory();
  follow(String(id));
  renderCharts();
  $('#charts-h').focus();
}

function renderCharts() {
  const i = insts.get(selected);
  $('#chart-target').textContent = i ? `${i.name}[${i.instance}] (id ${i.id})` : '—';
  const rb = $('#inst-restart');
  const label = i ? `${i.name}[${i.instance}]` : '';
  rb.hidden = !i;
  rb.disabled = readOnly;
  rb.title = 'restart ' + label;
  rb.setAttribute('aria-label', 'restart ' + label);
  const pts = pointsOf === selected ? points : [];
  drawChart($('#cpu-chart'), pts, 1, 'cpu', (v) => v.toFixed(1) + '%');
  drawChart($('#mem-chart'), pts, 2, 'mem', fmtBytes);
  const last = pts[pts.length - 1];
  $('#cpu-now').textContent = last ? `now ${last[1].toFixed(1)}%, peak ${Math.max(...pts.map((p) => p[1])).toFixed(1)}%` : '';
  $('#mem-now').textContent = last ? `now ${fmtBytes(last[2])}, peak ${fmtBytes(Math.max(...pts.map((p) => p[2])))}` : '';
  const unseen = i ? connsUnseen(i) : '';
  $('#conn-chart').style.display = unseen ? 'none' : ''; // an SVG element has no hidden property
  $('#conn-unseen').hidden = !unseen;
  $('#conn-unseen').textContent = unseen;
  if (unseen) { $('#conn-now').textContent = ''; return; }
  drawChart($('#conn-chart'), pts, 3, 'conn', fmtRate);
  $('#conn-now').textContent = last ? `now ${fmtRate(last[3])}, peak ${fmtRate(Math.max(...pts.map((p) => p[3] || 0)))}` : '';
}

function fmtRate(v) { return (v < 10 ? (v || 0).toFixed(1) : Math.round(v)) + '/s'; }

// connsUnseen says why tend does not see the connections of instance i,
// or '' when it does: tend counts those it hands out itself (cluster
// mode under rr or sticky, proxy mode), as tend.Sched.Counted says.
function connsUnseen(i) {
  if (!i.sched || i.mode === 'fork') return 'Not seen by tend in this mode: in fork mode the app accepts its connections itself.';
  if (i.sched === 'shared' || i.sched === 'reuseport') return `Not seen by tend in this mode: under ${i.mode}/${i.sched} the kernel hands connections to the instances.`;
  return '';
}

// drawChart draws pts on a scale from the oldest point (an hour ago at
// most, a minute at least) to now.
function drawChart(svg, pts, k, cls, fmt) {
  const now = Date.now();
  const span = Math.min(HOUR, Math.max(60e3, pts.length ? now - pts[0][0] : 0));
  const top = Math.max(1, ...pts.map((p) => p[k] || 0)) * 1.1;
  const xy = pts.map((p) => `${(360 - ((now - p[0]) / span) * 360).toFixed(1)},${(100 - ((p[k] || 0) / top) * 100).toFixed(1)}`);
  svg.replaceChildren();
  const ns = 'http://www.w3.org/2000/svg';
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', xy.join(' '));
  line.setAttribute('class', cls);
  svg.append(line);
  const name = { cpu: 'CPU', mem: 'Memory', conn: 'Connections per second' }[cls];
  svg.setAttribute('aria-label', `${name} over the last ${Math.round(span / 60e3)} minutes, top of scale ${fmt(top)}`);
}

// The last reloads, newest first, each with what it did to every
// instance: old pid → new pid, how long the new one took to be ready,
// and where it failed.
const BY = { dashboard: 'from this dashboard', command: 'by a command', watch: 'for a watched file', cron: 'by cron_restart', memory: 'for max_memory_restart', health: 'for a failing health check' };

function renderReloads(recs) {
  const list = $('#reloads');
  $('#no-reloads').hidden = recs.length > 0;
  list.replaceChildren(...recs.slice().reverse().map((r) => {
    const when = new Date(r.time);
    const head = el('p', { className: 'rl-head' },
      el('span', { className: r.ok ? 'st-online' : 'st-errored', textContent: r.ok ? '✔ ok' : '✖ failed' }),
      ` ${r.action} ${r.app}`,
      el('time', { dateTime: r.time, textContent: ` at ${when.toLocaleTimeString()}`, title: when.toString() }),
      ` ${BY[r.by] || '(started before the daemon restarted)'}, ${r.duration_ms} ms`);
    const item = el('li', { className: 'reload' }, head);
    item.dataset.app = r.app;
    item.dataset.time = r.time;
    if (r.error) item.append(el('p', { className: 'rl-err', textContent: r.error }));
    if (r.env_changes && r.env_changes.length) item.append(el('p', { textContent: 'environment: ' + r.env_changes.join(' ') }));
    const steps = r.steps || [];
    if (steps.length <= OPEN_STEPS) {
      if (steps.length) item.append(stepsTable(r));
      return item;
    }
    // A reload of a thousand instances is a thousand rows, twenty such
    // reloads most of the page's layout: their steps are built when asked
    // for, the failed ones named up front.
    const failed = steps.filter((s) => s.error).length;
    const more = el('details', { className: 'rl-steps' },
      el('summary', { textContent: `${steps.length} instances${failed ? `, ${failed} failed` : ''}` }));
    more.addEventListener('toggle', () => {
      if (more.open && !more.built) { more.built = true; more.append(stepsTable(r)); }
    });
    item.append(more);
    return item;
  }));
}

// OPEN_STEPS is how many steps a reload shows without being asked: an
// app's usual instances, one per core.
const OPEN_STEPS = 16;

// stepsTable is what reload r did to each instance.
function stepsTable(r) {
  const rows = r.steps.map((s) => el('tr', { className: s.error ? 'st-errored' : '' },
    el('td', { textContent: `${r.app}[${s.instance}]` }),
    el('td', { className: 'num', textContent: `${s.old_pid || '—'} → ${s.new_pid || '—'}` }),
    el('td', { className: 'num', textContent: s.new_pid ? `${s.ready_ms} ms${s.ready_by ? ' (' + s.ready_by + ')' : ''}` : '—' }),
    el('td', { className: 'num', textContent: s.old_pid ? `${s.stopped_ms || 0} ms` : '—' }),
    el('td', { textContent: s.error ? '✖ ' + s.error : '✔' + (s.hint ? ' ' + s.hint : '') })));
  return el('table', { className: 'steps' },
    el('thead', {}, el('tr', {}, ...['instance', 'old → new pid', 'ready after', 'old stopped after', 'result'].map((h) => el('th', { scope: 'col', textContent: h })))),
    el('tbody', {}, ...rows));
}

// Logs.
let logES = null;
let following = 'all'; // what the log view follows: all, an app, an instance id

// renderTargets lists what the log view can follow: all apps, each app,
// and the instance it follows (Show picks one): a thousand instances
// would make a menu nobody can use, and a page slower to lay out.
function renderTargets() {
  const sel = $('#log-target');
  const want = ['all'];
  const names = new Map([['all', 'all apps']]);
  for (const i of [...insts.values()].sort((a, b) => a.id - b.id)) {
    if (!names.has(i.name)) { want.push(i.name); names.set(i.name, 'app ' + i.name); }
  }
  const i = insts.get(Number(following));
  if (/^\d+$/.test(following) && i) {
    want.push(following);
    names.set(following, `${i.name}[${i.instance}] (id ${i.id})`);
  }
  const have = [...sel.options].map((o) => o.value);
  if (have.join('\n') !== want.join('\n')) {
    sel.replaceChildren(...want.map((v) => el('option', { value: v, textContent: names.get(v) })));
  }
  sel.value = want.includes(following) ? following : 'all';
}

function follow(target) {
  following = target;
  renderTargets();
  if (logES) logES.close();
  $('#log').replaceChildren();
  logES = new EventSource('/api/logs?target=' + encodeURIComponent(target));
  // Each opening, a reconnection too, begins with the last lines again.
  logES.onopen = () => $('#log').replaceChildren();
  logES.onmessage = (e) => addLine(JSON.parse(e.data));
}

function lineVisible(div) {
  const f = $('#log-filter').value.toLowerCase();
  const streamOn = div.classList.contains('err') ? $('#log-err').checked : $('#log-out').checked;
  return streamOn && (!f || div.textContent.toLowerCase().includes(f));
}

function addLine(l) {
  const log = $('#log');
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  const t = new Date(l.time).toLocaleTimeString();
  const div = el('div', { className: 'line ' + (l.stream === 'err' ? 'err' : 'out') },
    el('span', { className: 'tag', textContent: l.stream === 'err' ? 'err' : 'out' }),
    el('span', { className: 'src', textContent: `${t} ${l.app}[${l.instance}] ` }),
    el('span', { className: 'text', textContent: l.message }));
  div.hidden = !lineVisible(div);
  log.append(div);
  while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
}

function refilter() {
  for (const div of $('#log').children) div.hidden = !lineVisible(div);
}

// Actions, each confirmed first.
function confirmIt(text) {
  const dlg = $('#confirm');
  $('#confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (ok) => () => { dlg.close(); resolve(ok); };
    $('#confirm-ok').onclick = done(true);
    $('#confirm-cancel').onclick = done(false);
    dlg.oncancel = done(false);
    dlg.showModal();
    $('#confirm-ok').focus();
  });
}

async function act(action, body, label) {
  if (readOnly || !(await confirmIt(`Really ${label}?`))) return;
  say(`${label}: in progress…`);
  let r;
  try {
    r = await fetch('/api/' + action, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Tend-CSRF': csrf },
      body: JSON.stringify(body),
    });
  } catch {
    say(`${label}: not done: the daemon does not answer now (the page reconnects by itself); try again once it is live`);
    return;
  }
  const d = await r.json().catch(() => ({}));
  const steps = stepsOf(d);
  say((r.ok ? `${label}: done` : `${label}: failed: ${d.message || r.status}`) + (steps ? ` (${steps})` : ''));
}

// jsonOf is text as a JSON value: itself when it is JSON, else a string.
function jsonOf(text) {
  try { return JSON.parse(text); } catch { return text; }
}

// stepsOf says what a reload or scale did to each instance: its old and
// new pid, and why it stopped where it failed.
function stepsOf(d) {
  return (d.reports || []).flatMap((rep) => (rep.steps || []).map((s) =>
    `${rep.app}[${s.instance}] ${s.old_pid || '—'} → ${s.new_pid || '—'}${s.error ? ': ' + s.error : ''}`)).join(', ');
}

async function main() {
  if (!(await openSession())) return;
  $('#inst-restart').addEventListener('click', () => {
    const i = insts.get(selected);
    if (i) act('restart', { targets: [String(i.id)] }, `restart ${i.name}[${i.instance}]`);
  });
  $('#main').hidden = false;
  $('#log-target').addEventListener('change', (e) => follow(e.target.value));
  for (const id of ['#log-filter', '#log-out', '#log-err']) $(id).addEventListener('input', refilter);
  connect();
  follow('all');
}

main();
