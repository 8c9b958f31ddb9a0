// jobrt's dashboard: sign-in, the job list with state filters kept live by
// the event stream (GET /jobrt/v1/events, newline-delimited JSON read with
// fetch and a ReadableStream), and a job's page with its DAG, tasks, log
// tail and actions. Everything goes through the native API.
'use strict';

(function () {
  const API = '/jobrt/v1';
  const KEY = 'jobrt.auth';
  const FINAL = new Set(['succeeded', 'failed', 'canceled', 'rejected', 'suspended']);
  const $ = (sel) => document.querySelector(sel);

  const state = {
    auth: sessionStorage.getItem(KEY),
    who: sessionStorage.getItem(`${KEY}.who`) || '',
    admin: false,
    filter: '',
    jobs: new Map(),   // id -> summary, for the list
    showAll: false,
    stream: null,      // AbortController of the event stream
    poll: null,        // timer when there is no stream (not an admin)
    job: null,         // the job shown on its page
    logAfter: null,
    logTask: null,
    logs: [],
  };

  // ---- the API --------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.message ? body.message : `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: state.auth, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (res.status === 401) { signOut('Your credentials were not accepted; sign in again.'); }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  function flash(msg) {
    $('#flash').textContent = msg || '';
  }

  // ---- formatting -------------------------------------------------------

  const time = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');
  function elapsed(thing) {
    if (!thing.started_at) return '–';
    const end = thing.ended_at ? Date.parse(thing.ended_at) : Date.now();
    return duration((end - Date.parse(thing.started_at)) / 1000);
  }
  function duration(s) {
    if (!(s >= 0)) return '–';
    if (s < 60) return `${s.toFixed(1)}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  }
  const ms = (n) => (typeof n === 'number' ? (n < 1000 ? `${n}ms` : duration(n / 1000)) : '–');
  function bytes(n) {
    if (typeof n !== 'number' || n <= 0) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? `${n}B` : `${n.toFixed(1)}${units[i]}`;
  }
  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null || text === '' ? '–' : String(text);
    if (cls) td.className = cls;
    return td;
  }
  function badge(s) {
    const span = document.createElement('span');
    span.className = `state state-${s}`;
    span.textContent = s ? s.replace('_', ' ') : '–';
    return span;
  }
  // Why a job or task waits, short ("Resources (cpu)"), its words on hover.
  function reason(w) {
    if (!w || !w.reason) return '';
    const detail = w.reason === 'Resources' ? w.resources : w.reason === 'Dependency' ? w.dependencies : null;
    return detail && detail.length ? `${w.reason} (${detail.join(', ')})` : w.reason;
  }
  function waiting(w) {
    const span = document.createElement('span');
    span.className = 'waiting';
    span.textContent = reason(w);
    span.title = w && w.message ? w.message : '';
    return span;
  }

  // ---- sign-in ----------------------------------------------------------

  function show(section) {
    for (const id of ['signin', 'list', 'job']) $(`#${id}`).hidden = id !== section;
    $('#signout').hidden = section === 'signin';
    $('#who').textContent = section === 'signin' ? '' : `${state.who}${state.admin ? ' (admin)' : ''}`;
  }

  async function signIn(ev) {
    ev.preventDefault();
    const user = $('#user').value.trim();
    const password = $('#password').value;
    const token = $('#token').value.trim();
    $('#signin-error').textContent = '';
    if (!token && !user) {
      $('#signin-error').textContent = 'Give a user and password, or a token.';
      return;
    }
    // A password is traded for a session token at once, so the password is
    // neither kept in the tab nor checked again on every request.
    let auth = token ? `Bearer ${token}` : `Basic ${btoa(unescape(encodeURIComponent(`${user}:${password}`)))}`;
    const res = token
      ? await fetch(`${API}/jobs?limit=1`, { headers: { Authorization: auth } })
      : await fetch(`${API}/tokens`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: '{"ttl": "12h"}' });
    if (!res.ok) {
      let msg = `HTTP ${res.status}`;
      try { msg = (await res.json()).message || msg; } catch { /* keep the status */ }
      $('#signin-error').textContent = `Not signed in: ${msg}`;
      return;
    }
    if (!token) {
      auth = `Bearer ${(await res.json()).token}`;
      sessionStorage.setItem(`${KEY}.issued`, '1');
    } else {
      sessionStorage.removeItem(`${KEY}.issued`);
    }
    state.auth = auth;
    state.who = token ? 'token' : user;
    sessionStorage.setItem(KEY, auth);
    sessionStorage.setItem(`${KEY}.who`, state.who);
    $('#password').value = '';
    $('#token').value = '';
    start();
  }

  // Signing out revokes the session token sign-in made (not one the user
  // brought: it may serve elsewhere).
  function signOut(msg) {
    stopLive();
    if (state.auth && sessionStorage.getItem(`${KEY}.issued`)) {
      fetch(`${API}/tokens/current`, { method: 'DELETE', headers: { Authorization: state.auth } }).catch(() => {});
    }
    for (const k of [KEY, `${KEY}.who`, `${KEY}.issued`]) sessionStorage.removeItem(k);
    state.auth = null;
    state.admin = false;
    show('signin');
    $('#signin-error').textContent = msg || '';
  }

  // ---- live updates -----------------------------------------------------

  function stopLive() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    clearInterval(state.poll);
    state.poll = null;
    $('#live').hidden = true;
  }

  // The event stream needs the admin role: a 403 means polling instead.
  async function startLive() {
    stopLive();
    const ctrl = new AbortController();
    state.stream = ctrl;
    let res;
    try {
      res = await fetch(`${API}/events`, { headers: { Authorization: state.auth }, signal: ctrl.signal });
    } catch {
      res = null;
    }
    if (!res || !res.ok) {
      state.admin = false;
      state.stream = null;
      state.poll = setInterval(refresh, 3000);
      show(currentSection());
      return;
    }
    state.admin = true;
    show(currentSection());
    $('#live').hidden = false;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim()) onEvent(JSON.parse(line));
        }
      }
    } catch { /* aborted or cut */ }
    if (state.stream === ctrl) {
      // The server went away or restarted: try again shortly.
      $('#live').hidden = true;
      setTimeout(() => { if (state.stream === ctrl && state.auth) startLive(); }, 2000);
    }
  }

  const refetching = new Set();
  async function onEvent(ev) {
    if (ev.type === 'deleted') {
      state.jobs.delete(ev.job);
      renderList();
    } else if (!refetching.has(ev.job)) {
      refetching.add(ev.job);
      // Events come in bursts; one read of the job answers them all.
      setTimeout(async () => {
        refetching.delete(ev.job);
        try {
          const job = await api('GET', `/jobs/${encodeURIComponent(ev.job)}`);
          const { tasks, ...summary } = job;
          if (state.jobs.has(job.id) || !state.filter || state.filter === job.state) state.jobs.set(job.id, summary);
          if (state.filter && state.filter !== job.state) state.jobs.delete(job.id);
          renderList();
          if (state.job && state.job.id === job.id) renderJob(job);
        } catch { /* deleted meanwhile */ }
      }, 100);
    }
    if (state.job && state.job.id === ev.job) loadLogs();
  }

  function refresh() {
    if (currentSection() === 'list') loadJobs(true);
    else if (state.job) loadJob(state.job.id, true);
  }

  // ---- the job list -----------------------------------------------------

  // The API pages oldest first: every page is read (up to MAX_JOBS) so the
  // list can show the newest.
  const MAX_JOBS = 20000;
  const SHOWN = 300;

  async function loadJobs(quiet) {
    try {
      const jobs = new Map();
      let after = null;
      do {
        const q = new URLSearchParams({ limit: '1000' });
        if (state.filter) q.set('state', state.filter);
        if (after) q.set('after', after);
        const page = await api('GET', `/jobs?${q}`);
        for (const j of page.jobs) jobs.set(j.id, j);
        after = page.next || null;
      } while (after && jobs.size < MAX_JOBS);
      state.jobs = jobs;
      renderList();
      if (!quiet) flash('');
    } catch (e) {
      if (!quiet) flash(`Cannot list jobs: ${e.message}`);
    }
  }

  function renderList() {
    const body = $('#jobs tbody');
    // Newest first (a caller may choose ids, so by creation time).
    const all = [...state.jobs.values()].sort((a, b) => (a.created_at === b.created_at
      ? (a.id < b.id ? 1 : -1) : (a.created_at < b.created_at ? 1 : -1)));
    const jobs = state.showAll ? all : all.slice(0, SHOWN);
    body.replaceChildren(...jobs.map((j) => {
      const tr = document.createElement('tr');
      tr.dataset.id = j.id;
      tr.dataset.state = j.state;
      const link = document.createElement('a');
      link.href = `#/jobs/${encodeURIComponent(j.id)}`;
      link.textContent = j.id;
      link.className = 'mono';
      const first = document.createElement('td');
      first.append(link);
      const st = document.createElement('td');
      st.append(badge(j.state));
      if (j.waiting) st.append(' ', waiting(j.waiting));
      tr.append(first, cell(j.title), st, cell(j.owner), cell(j.surface), cell(time(j.created_at)), cell(elapsed(j)));
      tr.addEventListener('click', (e) => { if (e.target.tagName !== 'A') location.hash = link.getAttribute('href'); });
      return tr;
    }));
    $('#jobs-empty').hidden = jobs.length > 0;
    $('#more').hidden = jobs.length === all.length;
    $('#more').textContent = `Show all ${all.length}`;
  }

  function setFilter(s) {
    state.filter = s;
    for (const b of document.querySelectorAll('#filters button')) b.classList.toggle('on', b.dataset.state === s);
    loadJobs();
  }

  // ---- a job's page -----------------------------------------------------

  async function loadJob(id, quiet) {
    try {
      const job = await api('GET', `/jobs/${encodeURIComponent(id)}`);
      if (!state.job || state.job.id !== job.id) {
        state.logAfter = null;
        state.logs = [];
        state.logTask = null;
        $('#log').textContent = '';
      }
      renderJob(job);
      loadLogs();
    } catch (e) {
      if (!quiet) flash(`Cannot show job ${id}: ${e.message}`);
    }
  }

  function fact(dl, name, value) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value === undefined || value === null || value === '' ? '–' : value;
    dl.append(dt, dd);
  }

  function renderJob(job) {
    state.job = job;
    $('#job-title').textContent = job.title || job.id;
    const st = $('#job-state');
    st.className = `state state-${job.state}`;
    st.textContent = job.state.replace('_', ' ');
    const done = job.tasks.filter((t) => ['succeeded', 'failed', 'canceled', 'skipped'].includes(t.state)).length;
    const dl = $('#job-facts');
    dl.replaceChildren();
    fact(dl, 'id', job.id);
    fact(dl, 'owner', job.owner);
    fact(dl, 'surface', job.surface);
    fact(dl, 'tasks', `${done}/${job.tasks.length} done`);
    fact(dl, 'created', time(job.created_at));
    fact(dl, 'started', time(job.started_at));
    fact(dl, 'ended', time(job.ended_at));
    fact(dl, 'elapsed', elapsed(job));
    if (job.approval) fact(dl, 'approval', `${job.approval.decision || ''} ${job.approval.by ? `by ${job.approval.by}` : ''} ${job.approval.reason || ''}`.trim());
    $('#job-waiting').textContent = job.waiting ? `Waiting: ${reason(job.waiting)} — ${job.waiting.message}` : '';
    $('#job-waiting').hidden = !job.waiting;
    $('#job-error').textContent = job.error || '';
    $('#cancel').hidden = FINAL.has(job.state);
    $('#restart').hidden = !['failed', 'canceled', 'suspended', 'succeeded'].includes(job.state);
    $('#approve').hidden = !(state.admin && job.state === 'awaiting_approval');
    $('#reject').hidden = $('#approve').hidden;
    window.jobrtDag.draw($('#dag'), job.tasks, selectTask, state.logTask);
    $('#tasks tbody').replaceChildren(...job.tasks.map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.task = t.alias;
      const stc = document.createElement('td');
      stc.append(badge(t.state));
      const wc = document.createElement('td');
      if (t.waiting) wc.append(waiting(t.waiting)); else wc.textContent = '–';
      const u = t.usage || {};
      tr.append(cell(t.alias, 'mono'), stc, cell(t.outcome), cell(t.exit_code), cell(t.attempt),
        cell(ms(u.cpu_ms)), cell(ms(u.wall_ms)), cell(bytes(u.max_rss_bytes)), wc, cell(t.error));
      return tr;
    }));
  }

  function selectTask(alias) {
    state.logTask = alias;
    $('#log-filter').textContent = alias ? `(task ${alias}; click it again for all)` : '';
    renderLogs();
    if (state.job) window.jobrtDag.draw($('#dag'), state.job.tasks, selectTask, alias);
  }

  let logLoading = false;
  async function loadLogs() {
    if (!state.job || logLoading) return;
    logLoading = true;
    const id = state.job.id;
    try {
      for (let i = 0; i < 20; i++) {
        const q = new URLSearchParams({ limit: '1000' });
        if (state.logAfter !== null) q.set('after', state.logAfter);
        const page = await api('GET', `/jobs/${encodeURIComponent(id)}/logs?${q}`);
        if (!state.job || state.job.id !== id) return;
        state.logs.push(...page.logs);
        if (page.logs.length) state.logAfter = page.logs[page.logs.length - 1].id;
        // The tail: the last 5000 lines.
        if (state.logs.length > 5000) state.logs.splice(0, state.logs.length - 5000);
        if (page.logs.length < 1000) break;
      }
      renderLogs();
    } catch { /* shown on the next refresh */ } finally {
      logLoading = false;
    }
  }

  function renderLogs() {
    const pre = $('#log');
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const lines = state.logs.filter((l) => !state.logTask || l.task === state.logTask).map((l) => {
      const span = document.createElement('span');
      span.className = `line level-${l.level}`;
      span.textContent = `${(l.time || '').slice(11, 23)} ${l.task || 'job'}: ${l.message}\n`;
      return span;
    });
    pre.replaceChildren(...lines);
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  async function act(what) {
    const job = state.job;
    if (!job) return;
    let path = `/jobs/${encodeURIComponent(job.id)}/${what}`;
    let body;
    if (what === 'cancel') {
      if (!confirm(`Cancel job ${job.title || job.id}?`)) return;
    } else if (what === 'approve' || what === 'reject') {
      const reason = prompt(what === 'approve' ? 'Approve: reason (optional)' : 'Reject: reason (optional)');
      if (reason === null) return;
      body = { accept: what === 'approve', reason: reason || undefined };
      path = `/jobs/${encodeURIComponent(job.id)}/approve`;
    }
    try {
      const updated = await api('POST', path, body);
      flash('');
      renderJob(updated);
      loadLogs();
    } catch (e) {
      flash(`${what}: ${e.message}`);
    }
  }

  // ---- routing ----------------------------------------------------------

  function currentSection() {
    if (!state.auth) return 'signin';
    return location.hash.startsWith('#/jobs/') ? 'job' : 'list';
  }

  function route() {
    const section = currentSection();
    show(section);
    flash('');
    if (section === 'job') {
      const id = decodeURIComponent(location.hash.slice('#/jobs/'.length));
      if (!state.job || state.job.id !== id) {
        state.job = null;
        $('#job-title').textContent = id;
        $('#dag').replaceChildren();
        $('#tasks tbody').replaceChildren();
        $('#log').textContent = '';
      }
      loadJob(id);
    } else if (section === 'list') {
      state.job = null;
      loadJobs();
    }
  }

  function start() {
    route();
    startLive();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#signin-form').addEventListener('submit', signIn);
    $('#signout').addEventListener('click', () => signOut(''));
    $('#more').addEventListener('click', () => { state.showAll = true; renderList(); });
    for (const b of document.querySelectorAll('#filters button')) b.addEventListener('click', () => setFilter(b.dataset.state));
    for (const what of ['cancel', 'restart', 'approve', 'reject']) $(`#${what}`).addEventListener('click', () => act(what));
    window.addEventListener('hashchange', route);
    // A running job's log grows without events: its tail is read every second.
    setInterval(() => {
      if (currentSection() === 'job' && state.job && !FINAL.has(state.job.state)) loadLogs();
    }, 1000);
    // Elapsed times of running jobs move on between events.
    setInterval(() => {
      if (currentSection() === 'list' && [...state.jobs.values()].some((j) => !FINAL.has(j.state) && j.started_at)) renderList();
    }, 1000);
    if (state.auth) start(); else show('signin');
  });
}());
