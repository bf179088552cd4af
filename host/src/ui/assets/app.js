// Hoist's web UI: one vanilla script, no build step, no dependency. It speaks the JSON API
// under /api/v1 with the session cookie, sends the X-Hoist-UI header on every request
// (the host's CSRF guard for requests that change state), and follows an import through
// the API's Server-Sent Events. Everything it shows from the server goes through
// textContent, never innerHTML: the Content-Security-Policy forbids inline script, and
// the page builds no markup from strings.
'use strict';

const state = {
  user: null, // {user, admin}
  view: null, // the rendered route's key
  project: null,
  task: null, // the task shown in the task panel
  source: null, // its EventSource
  samples: [], // [{t, bytes}] for speed and ETA
  parseTimer: 0,
  parseSeq: 0,
  active: [], // ids of the history's queued and running tasks
  historyTimer: 0,
  history: new Map(), // the history's tasks by id, for its Show buttons
};

// While the history holds queued or running tasks, it refreshes itself this often, and
// the tags with it when one of them ends, so that a batch lands without a reload. One
// request per interval, where an event stream per task would use up the browser's six
// connections to the host.
const HISTORY_REFRESH_MS = 2000;

// ---- helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel) => document.querySelector(sel);

async function api(method, path, body) {
  const headers = { 'X-Hoist-UI': '1', Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    return { status: 0, data: { error: { message: 'the host does not answer: ' + e.message } } };
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = { error: { message: text } }; }
  }
  if (response.status === 401 && path !== '/ui/session') {
    state.user = null;
    renderWho();
  }
  return { status: response.status, data };
}

function errorText(r) {
  return (r.data && r.data.error && r.data.error.message) || 'the host answered ' + r.status;
}

function toast(message) {
  const t = $('#toast');
  t.textContent = message;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 2500);
}

// Shows a field's outcome in the message under it, and marks the field invalid or not
// for assistive technology.
function fieldResult(field, msg, ok, text) {
  msg.className = 'field-msg ' + (ok ? 'ok' : 'error');
  msg.textContent = text;
  if (ok) field.removeAttribute('aria-invalid');
  else field.setAttribute('aria-invalid', 'true');
}

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
}

function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function duration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return Math.ceil(seconds) + ' s';
  const m = Math.floor(seconds / 60);
  return m + ' min ' + Math.round(seconds % 60) + ' s';
}

function shortDigest(d) {
  return d ? d.replace(/^(sha256:[0-9a-f]{12}).*$/, '$1…') : '–';
}

function badge(s) {
  return h('span', { class: 'badge ' + s, text: s });
}

function td(label, ...children) {
  return h('td', { 'data-label': label }, ...children);
}

function copyField(id, label, value) {
  const input = h('input', { type: 'text', id, readonly: true, value, 'aria-label': label });
  const button = h('button', {
    type: 'button', class: 'secondary', text: 'Copy',
    onclick: async () => {
      input.select();
      try { await navigator.clipboard.writeText(value); toast('Copied'); } catch (_) {
        toast('Select the text and copy it');
      }
    },
  });
  return h('div', { class: 'copy' }, input, button);
}

// ---- session ----

async function loadSession() {
  const r = await api('GET', '/ui/session');
  state.user = r.status === 200 ? r.data : null;
  renderWho();
}

function renderWho() {
  const who = $('#who');
  who.hidden = false;
  const name = $('#who-name');
  const out = $('#sign-out');
  if (state.user) {
    name.textContent = 'Signed in as ' + state.user.user;
    out.textContent = 'Sign out';
  } else {
    name.textContent = '';
    out.textContent = 'Sign in';
  }
}

async function signOutOrIn() {
  if (!state.user) { location.hash = '#/signin'; return; }
  await api('DELETE', '/ui/session');
  state.user = null;
  renderWho();
  location.hash = '#/signin';
}

function viewSignIn(main) {
  const user = h('input', { type: 'text', id: 'signin-user', autocomplete: 'username', value: 'admin', required: true });
  const password = h('input', { type: 'password', id: 'signin-password', autocomplete: 'current-password', required: true });
  const message = h('p', { id: 'signin-error', class: 'field-msg error', role: 'alert' });
  const form = h('form', { id: 'signin-form', class: 'card narrow', novalidate: true },
    h('h1', { text: 'Sign in to Hoist' }),
    h('label', { for: 'signin-user', text: 'User' }), user,
    h('p', { class: 'hint', text: 'admin, or robot$name for a robot account' }),
    h('label', { for: 'signin-password', text: 'Password' }), password,
    message,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'signin-submit', text: 'Sign in' })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.textContent = '';
    const r = await api('POST', '/ui/session', { username: user.value, password: password.value });
    password.value = '';
    if (r.status !== 200) {
      message.textContent = errorText(r);
      password.focus();
      return;
    }
    state.user = r.data;
    renderWho();
    location.hash = '#/';
  });
  main.append(form);
  password.focus();
}

// ---- projects ----

async function viewProjects(main) {
  main.append(h('h1', { text: 'Projects' }));
  if (state.user && state.user.admin) {
    const name = h('input', { type: 'text', id: 'project-name', placeholder: 'my-team', autocomplete: 'off', required: true, 'aria-describedby': 'project-msg' });
    const pub = h('input', { type: 'checkbox', id: 'project-public' });
    const msg = h('p', { id: 'project-msg', class: 'field-msg', role: 'status' });
    const form = h('form', { id: 'project-form', class: 'card', novalidate: true },
      h('h2', { text: 'New project' }),
      h('div', { class: 'row' },
        h('div', {}, h('label', { for: 'project-name', text: 'Name' }), name),
        h('div', {}, h('label', { class: 'check', for: 'project-public' }, pub, 'Public (anyone may pull)')),
        h('div', {}, h('button', { type: 'submit', id: 'project-create', text: 'Create project' }))),
      msg);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const r = await api('POST', '/api/v1/projects', { name: name.value.trim(), public: pub.checked });
      if (r.status !== 201) {
        fieldResult(name, msg, false, errorText(r));
        return;
      }
      fieldResult(name, msg, true, 'Created ' + r.data.name);
      name.value = '';
      pub.checked = false;
      loadProjects();
    });
    main.append(form);
  } else if (!state.user) {
    main.append(h('p', {}, 'Public projects are listed below. ', h('a', { href: '#/signin', text: 'Sign in' }), ' to manage projects and import images.'));
  }
  main.append(h('section', { class: 'card', 'aria-labelledby': 'projects-title' },
    h('h2', { id: 'projects-title', text: 'All projects' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'projects', class: 'cards' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Name' }), h('th', { text: 'Visibility' }), h('th', { text: 'Created' }), h('th', { text: 'Actions' }))),
      h('tbody', {})))));
  await loadProjects();
}

async function loadProjects() {
  const body = $('#projects tbody');
  if (!body) return;
  const r = await api('GET', '/api/v1/projects');
  if (r.status !== 200) {
    noteRow(body, errorText(r), 'error');
    return;
  }
  body.replaceChildren();
  if (!r.data.length) noteRow(body, 'No projects yet.');
  const admin = state.user && state.user.admin;
  for (const p of r.data) {
    const visibility = admin
      ? h('label', { class: 'check' }, h('input', {
        type: 'checkbox', checked: p.public, 'aria-label': 'Public: ' + p.name,
        onchange: async (e) => {
          const res = await api('PATCH', '/api/v1/projects/' + encodeURIComponent(p.name), { public: e.target.checked });
          if (res.status !== 200) { toast(errorText(res)); e.target.checked = !e.target.checked; } else toast(p.name + (e.target.checked ? ' is public' : ' is private'));
        },
      }), 'public')
      : (p.public ? 'public' : 'private');
    const del = admin ? h('button', {
      type: 'button', class: 'danger delete-project', 'aria-label': 'Delete project ' + p.name, text: 'Delete',
      onclick: async (e) => {
        const b = e.target;
        // Two steps instead of a confirm() dialog: the page stays in control, and a
        // second click is deliberate.
        if (!b.dataset.armed) { b.dataset.armed = '1'; b.textContent = 'Really delete?'; return; }
        const res = await api('DELETE', '/api/v1/projects/' + encodeURIComponent(p.name));
        if (res.status >= 300) toast(errorText(res)); else toast('Deleted ' + p.name);
        loadProjects();
      },
    }) : '';
    body.append(h('tr', {},
      td('Name', h('a', { href: '#/projects/' + encodeURIComponent(p.name), dataset: { project: p.name }, text: p.name })),
      td('Visibility', visibility),
      td('Created', when(p.created_at)),
      td('Actions', del)));
  }
}

// ---- one project ----

const PLATFORMS = ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/386', 'linux/ppc64le', 'linux/s390x', 'linux/riscv64', 'windows/amd64'];

async function viewProject(main, name) {
  state.project = name;
  state.active = [];
  const r = await api('GET', '/api/v1/projects/' + encodeURIComponent(name));
  if (r.status !== 200) {
    main.append(h('h1', { text: name }), h('p', { class: 'error', role: 'alert', text: errorText(r) }));
    if (r.status === 401) main.append(h('p', {}, h('a', { href: '#/signin', text: 'Sign in' })));
    return;
  }
  main.append(h('p', {}, h('a', { href: '#/', text: '← Projects' })),
    h('h1', { id: 'project-title' }, 'Project ', h('span', { class: 'mono', text: name }), ' ', badge(r.data.public ? 'public' : 'private')),
    h('p', {}, syncLink(name)));
  const left = h('div', { class: 'stack' });
  const right = h('div', { class: 'stack' });
  main.append(h('div', { class: 'grid' }, left, right));
  if (state.user) left.append(importForm(name), batchForm(name));
  right.append(taskPanel());
  main.append(tagsSection(), historySection());
  loadTags();
  loadHistory();
}

function tagsSection() {
  return h('section', { class: 'card', 'aria-labelledby': 'tags-title' },
    h('h2', { id: 'tags-title', text: 'Repositories and tags' }),
    h('p', { id: 'repos-summary', class: 'hint' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'tags', class: 'cards' },
      h('thead', {}, h('tr', {}, ['Repository', 'Tag', 'Digest', 'Size', 'Platforms', 'Updated', 'Origin'].map((t) => h('th', { text: t })))),
      h('tbody', {}))));
}

async function loadTags() {
  const body = $('#tags tbody');
  if (!body) return;
  const r = await api('GET', '/ui/data/projects/' + encodeURIComponent(state.project) + '/tags');
  if (r.status !== 200) {
    noteRow(body, errorText(r), 'error');
    return;
  }
  $('#repos-summary').textContent = r.data.repositories.length + ' repositories, ' + r.data.tags.length + ' tags';
  if (!r.data.tags.length) { noteRow(body, 'No tags yet: import an image or push one.'); return; }
  // A row is redrawn only when its tag changed, so that a digest being selected for
  // copying survives the reload that follows each finished import.
  const repo = (t) => t.repository.slice(state.project.length + 1);
  syncRows(body, r.data.tags, (t) => repo(t) + ':' + t.tag,
    (t, row) => {
      const data = JSON.stringify(t);
      if (row.dataset.data === data) return;
      row.dataset.data = data;
      row.dataset.tag = row.dataset.key;
      const origin = t.origin === 'import'
        ? h('span', {}, 'imported from ', h('span', { class: 'mono', text: t.imported_from }))
        : 'pushed';
      row.replaceChildren(
        td('Repository', h('span', { class: 'mono', text: repo(t) })),
        td('Tag', h('span', { class: 'mono tag-name', text: t.tag }),
          t.referrers ? h('div', { class: 'hint tag-referrers', title: 'Signatures, SBOMs and attestations that refer to this image', text: t.referrers }) : ''),
        td('Digest', h('span', { class: 'mono', title: t.digest, text: shortDigest(t.digest) })),
        td('Size', bytes(t.size)),
        td('Platforms', t.platforms.length ? t.platforms.join(', ') : '–'),
        td('Updated', when(t.updated_at)),
        td('Origin', origin));
    });
}

// Replaces a table body's rows with one line of text across all of the table's columns.
function noteRow(body, text, cls) {
  const columns = body.closest('table').querySelectorAll('thead th').length;
  body.replaceChildren(h('tr', {}, h('td', { colspan: columns, class: cls, text })));
}

// Brings a table body's rows in line with `items`, in order. Each row is keyed by
// `key(item)` and kept, the same element, for as long as its key is listed: the tables
// reload while the admin works on them, and a row replaced between the press and the
// release of the mouse swallows the click, as it drops a text selection. `draw(item, row)`
// fills a row, new or kept.
function syncRows(body, items, key, draw) {
  const kept = new Map([...body.children].filter((row) => row.dataset.key).map((row) => [row.dataset.key, row]));
  let next = body.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let row = kept.get(k);
    if (!row) row = h('tr', { dataset: { key: k } });
    draw(item, row);
    if (row !== next) body.insertBefore(row, next);
    next = row.nextElementSibling;
  }
  while (next) { const gone = next; next = next.nextElementSibling; gone.remove(); }
}

function importForm(project) {
  const source = h('input', { type: 'text', id: 'import-source', placeholder: 'nginx, ghcr.io/owner/repo:v1, host:5000/ns/img@sha256:…', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'import-parse' });
  const parsed = h('p', { id: 'import-parse', class: 'field-msg', 'aria-live': 'polite' });
  const image = h('input', { type: 'text', id: 'import-image', autocomplete: 'off', spellcheck: 'false' });
  const tag = h('input', { type: 'text', id: 'import-tag', autocomplete: 'off', spellcheck: 'false' });
  const user = h('input', { type: 'text', id: 'import-username', autocomplete: 'off', spellcheck: 'false' });
  const password = h('input', { type: 'password', id: 'import-password', autocomplete: 'new-password' });
  const platform = h('select', { id: 'import-platform' },
    h('option', { value: '', text: 'All platforms' }), PLATFORMS.map((p) => h('option', { value: p, text: p })));
  const referrers = h('input', { type: 'checkbox', id: 'import-referrers', checked: true });
  const requireSig = h('input', { type: 'checkbox', id: 'import-require-signature' });
  const types = h('input', { type: 'text', id: 'import-artifact-types', autocomplete: 'off', spellcheck: 'false', placeholder: 'all types' });
  const rate = h('input', { type: 'number', id: 'import-rate', min: '0.1', step: '0.1', placeholder: 'no limit' });
  const error = h('p', { id: 'import-error', class: 'field-msg error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'import-submit', text: 'Import' });
  // The target fields follow the parse until the admin edits them.
  for (const f of [image, tag]) f.addEventListener('input', () => { f.dataset.edited = '1'; });

  source.addEventListener('input', () => {
    clearTimeout(state.parseTimer);
    state.parseTimer = setTimeout(() => checkSource(source, parsed, image, tag), 250);
  });

  const creds = h('details', { id: 'import-creds' },
    h('summary', { text: 'Source credentials (optional)' }),
    h('p', { class: 'hint', text: 'For a private source. They are sealed on the host and never shown again; the form forgets them when it is sent.' }),
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'import-username', text: 'User name' }), user),
      h('div', {}, h('label', { for: 'import-password', text: 'Password or token' }), password)));

  const more = h('details', { id: 'import-more' },
    h('summary', { text: 'Signatures, SBOMs and bandwidth' }),
    h('label', { class: 'check' }, referrers, ' Copy signatures, SBOMs and attestations with the image'),
    h('label', { class: 'check' }, requireSig, ' Refuse the image if it is not signed'),
    h('label', { for: 'import-artifact-types', text: 'Only these artifact types (comma-separated)' }), types,
    h('label', { for: 'import-rate', text: 'Bandwidth limit (MiB/s)' }), rate);

  const form = h('form', { id: 'import-form', class: 'card', novalidate: true, 'aria-labelledby': 'import-title' },
    h('h2', { id: 'import-title', text: 'Import image' }),
    h('label', { for: 'import-source', text: 'Source image' }), source, parsed,
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'import-image', text: 'Target image' }), image),
      h('div', {}, h('label', { for: 'import-tag', text: 'Target tag' }), tag)),
    h('p', { class: 'hint' }, 'Lands in ', h('span', { class: 'mono', id: 'import-target', text: project + '/…' })),
    h('label', { for: 'import-platform', text: 'Platform' }), platform,
    more, creds, error,
    h('div', { class: 'actions' }, submit));
  const showTarget = () => {
    $('#import-target').textContent = project + '/' + (image.value || image.placeholder || '…') + (tag.value ? ':' + tag.value : '');
  };
  image.addEventListener('input', showTarget);
  tag.addEventListener('input', showTarget);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const body = { source_url: source.value.trim() };
    if (image.value.trim()) body.target_image = image.value.trim();
    if (tag.value.trim()) body.target_tag = tag.value.trim();
    if (platform.value) body.platforms = [platform.value];
    const allowed = types.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (!referrers.checked || requireSig.checked || allowed.length) {
      body.referrer_options = { copy: referrers.checked, require_signature: requireSig.checked, artifact_types: allowed };
    }
    if (rate.value) body.max_bytes_per_second = Math.round(Number(rate.value) * 1048576);
    if (user.value || password.value) body.auth = { username: user.value, password: password.value };
    // The secret leaves the page with this request and nowhere else.
    password.value = '';
    user.value = '';
    creds.open = false;
    submit.disabled = true;
    const r = await api('POST', '/api/v1/projects/' + encodeURIComponent(project) + '/images/import', body);
    body.auth = undefined;
    submit.disabled = false;
    for (const f of [source, image, tag, types, rate]) f.removeAttribute('aria-invalid');
    if (r.status !== 202) {
      const field = r.data && r.data.error && r.data.error.field;
      const target = { source_url: source, target_image: image, target_tag: tag, referrer_options: types, max_bytes_per_second: rate }[field];
      if (target) target.setAttribute('aria-invalid', 'true');
      error.textContent = errorText(r);
      return;
    }
    if (r.data.merged) toast('The same import is already under way: following it');
    showTask(r.data.task);
    loadHistory();
  });
  return form;
}

async function checkSource(source, parsed, image, tag) {
  const value = source.value.trim();
  const seq = ++state.parseSeq;
  if (!value) {
    parsed.textContent = '';
    source.removeAttribute('aria-invalid');
    return;
  }
  const r = await api('GET', '/api/v1/references/parse?reference=' + encodeURIComponent(value));
  if (seq !== state.parseSeq) return; // a newer keystroke's answer wins
  if (r.status !== 200) {
    fieldResult(source, parsed, false, errorText(r));
    return;
  }
  fieldResult(source, parsed, true, value + ' → ' + r.data.canonical);
  const last = r.data.repository.split('/').pop();
  image.placeholder = last;
  if (!image.dataset.edited) image.value = last;
  if (!tag.dataset.edited) {
    tag.value = r.data.tag || '';
    tag.placeholder = r.data.tag ? '' : 'kept by digest';
  }
  const target = $('#import-target');
  if (target) target.textContent = state.project + '/' + (image.value || last) + (tag.value ? ':' + tag.value : '');
}

function batchForm(project) {
  const refs = h('textarea', { id: 'batch-refs', placeholder: 'nginx:1.27\nredis:7\nghcr.io/owner/repo:v1', spellcheck: 'false', 'aria-describedby': 'batch-hint' });
  const result = h('ul', { id: 'batch-result', 'aria-live': 'polite' });
  const form = h('form', { id: 'batch-form', class: 'card', novalidate: true },
    h('h2', { text: 'Batch import' }),
    h('label', { for: 'batch-refs', text: 'Images, one per line' }), refs,
    h('p', { id: 'batch-hint', class: 'hint', text: 'Each becomes a task of its own, with the default target name; shared blobs are copied once.' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'batch-submit', text: 'Import all' })),
    result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const lines = refs.value.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    result.replaceChildren();
    if (!lines.length) { result.append(h('li', { class: 'error', text: 'Paste at least one image reference.' })); return; }
    const r = await api('POST', '/api/v1/projects/' + encodeURIComponent(project) + '/images/import/batch', { images: lines.map((l) => ({ source_url: l })) });
    if (r.status !== 202) { result.append(h('li', { class: 'error', text: errorText(r) })); return; }
    for (const item of r.data.items) {
      if (item.task) {
        result.append(h('li', {}, h('span', { class: 'mono', text: item.source_url }), ' → ',
          h('button', { type: 'button', class: 'link', text: 'task ' + item.task_id.slice(0, 8), onclick: () => showTask(item.task) })));
      } else {
        result.append(h('li', { class: 'error' }, h('span', { class: 'mono', text: item.source_url }), ': ' + item.error.message));
      }
    }
    loadHistory();
  });
  return form;
}

// ---- the task panel ----

function taskPanel() {
  return h('section', { id: 'task', class: 'card', 'aria-labelledby': 'task-title', 'aria-live': 'polite' },
    h('h2', { id: 'task-title', text: 'Import progress' }),
    h('p', { id: 'task-empty', class: 'hint', text: 'Start an import, or pick a task from the history, to follow it here.' }));
}

function showTask(task) {
  if (state.source) { state.source.close(); state.source = null; }
  state.task = task;
  state.samples = [];
  renderTask(task);
  if (!['succeeded', 'failed', 'cancelled'].includes(task.state)) follow(task.id);
  for (const row of document.querySelectorAll('#history tr[data-task]')) row.classList.toggle('selected', row.dataset.task === task.id);
}

function follow(id) {
  const source = new EventSource('/api/v1/tasks/' + encodeURIComponent(id) + '/events');
  state.source = source;
  const onTask = (e) => {
    if (state.source !== source) return;
    const task = JSON.parse(e.data);
    state.task = task;
    renderTask(task);
  };
  source.addEventListener('task', onTask);
  source.addEventListener('end', (e) => {
    onTask(e);
    source.close();
    if (state.source === source) state.source = null;
    loadHistory();
    loadTags();
  });
  // EventSource reconnects by itself after a network error; each connection starts
  // with the whole task, so nothing is missed.
}

function sample(task) {
  const now = performance.now() / 1000;
  state.samples.push({ t: now, bytes: task.bytes_done });
  while (state.samples.length > 2 && now - state.samples[0].t > 5) state.samples.shift();
  const first = state.samples[0];
  const dt = now - first.t;
  return dt >= 0.5 ? (task.bytes_done - first.bytes) / dt : NaN;
}

function renderTask(task) {
  const panel = $('#task');
  if (!panel) return;
  const finished = ['succeeded', 'failed', 'cancelled'].includes(task.state);
  const pct = task.state === 'succeeded' ? 100
    : task.bytes_total > 0 ? Math.floor((task.bytes_done / task.bytes_total) * 100) : 0;
  const speed = finished ? NaN : sample(task);
  const eta = speed > 0 ? (task.bytes_total - task.bytes_done) / speed : NaN;
  const bar = h('div', { style: null });
  bar.style.width = pct + '%';
  const progress = h('div', {
    id: 'task-progress', class: 'progress ' + (task.state === 'succeeded' ? 'done' : task.state === 'failed' ? 'failed' : ''),
    role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct), 'aria-label': 'Import progress',
  }, bar);
  const children = [
    h('h2', { id: 'task-title', text: 'Import progress' }),
    h('p', {}, h('span', { class: 'mono', text: task.source_canonical }), ' → ', h('span', { class: 'mono', text: task.target })),
    h('p', {}, badge(task.state), ' ', h('span', { id: 'task-state', class: 'hint', dataset: { state: task.state }, text: task.phase ? 'phase: ' + task.phase : '' }),
      ' ', h('span', { class: 'hint', text: 'task ' + task.id })),
    progress,
    h('div', { class: 'stats' },
      h('span', {}, h('b', { id: 'task-percent', text: pct + '%' })),
      h('span', { id: 'task-bytes' }, h('b', { text: bytes(task.bytes_done) }), ' of ', bytes(task.bytes_total)),
      h('span', { id: 'task-blobs' }, h('b', { text: task.blobs_done + '/' + task.blobs_total }), ' blobs'),
      h('span', { id: 'task-speed' }, 'speed ', h('b', { text: isFinite(speed) ? bytes(speed) + '/s' : '–' })),
      h('span', { id: 'task-eta' }, 'ETA ', h('b', { text: finished ? '–' : duration(eta) }))),
  ];
  if (task.blobs && task.blobs.length) {
    children.push(h('details', { open: task.blobs.length <= 6 },
      h('summary', { text: 'Blobs (' + task.blobs.length + ')' }),
      h('div', { class: 'table-wrap' }, h('table', { id: 'task-blobs-list', class: 'cards' },
        h('thead', {}, h('tr', {}, ['Digest', 'Kind', 'Size', 'Done', 'State'].map((t) => h('th', { text: t })))),
        h('tbody', {}, task.blobs.map((b) => h('tr', {},
          td('Digest', h('span', { class: 'mono', title: b.digest, text: shortDigest(b.digest) })),
          td('Kind', b.media_type.split('.').slice(-2).join('.')),
          td('Size', bytes(b.size)),
          td('Done', b.size ? Math.floor((b.bytes_done / b.size) * 100) + '%' : '–'),
          td('State', badge(b.state), b.error ? h('span', { class: 'error', text: ' ' + b.error }) : ''))))))));
  }
  if (task.state === 'succeeded') {
    const pull = 'docker pull ' + task.target;
    children.push(h('div', { id: 'task-result', class: 'result ok', role: 'status' },
      h('p', {}, 'Imported. Digest ', h('span', { id: 'task-digest', class: 'mono', text: task.digest || '–' })),
      copyField('task-pull', 'Pull command', pull)));
  } else if (task.error) {
    children.push(h('div', { id: 'task-error', class: 'result error', role: 'alert' },
      h('p', {}, h('b', { text: task.error.code }), ': ', h('span', { id: 'task-error-message', text: task.error.message }))));
  }
  if (task.state === 'waiting' && task.waiting_until) {
    children.push(h('p', { id: 'task-waiting', class: 'result', role: 'status',
      text: 'Waiting for the source\'s quota: the import runs again at ' + when(task.waiting_until) + '.' }));
  }
  if (task.referrers && task.referrers.length) {
    const kinds = { signature: 'signed', sbom: 'SBOM', attestation: 'attestation', other: 'other artifacts' };
    const seen = [...new Set(task.referrers.map((r) => kinds[r.kind] || r.kind))];
    children.push(h('details', { open: task.referrers.length <= 6 },
      h('summary', {}, 'Referrers: ', h('b', { id: 'task-referrers-summary', text: seen.join(', ') }),
        ' (' + task.referrers.filter((r) => r.copied).length + ' of ' + task.referrers.length + ' copied)'),
      h('div', { class: 'table-wrap' }, h('table', { id: 'task-referrers', class: 'cards' },
        h('thead', {}, h('tr', {}, ['Digest', 'Kind', 'Artifact type', 'Of', 'Copied'].map((t) => h('th', { text: t })))),
        h('tbody', {}, task.referrers.map((r) => h('tr', {},
          td('Digest', h('span', { class: 'mono', title: r.digest, text: shortDigest(r.digest) })),
          td('Kind', r.kind),
          td('Artifact type', h('span', { class: 'mono', text: r.tag || r.artifact_type })),
          td('Of', h('span', { class: 'mono', title: r.subject, text: shortDigest(r.subject) })),
          td('Copied', r.copied ? 'yes' : 'not yet'))))))));
  }
  if (task.quota) {
    const q = task.quota;
    children.push(h('p', { id: 'task-quota', class: 'hint', text: 'Source quota: ' + q.remaining +
      (q.limit != null ? ' of ' + q.limit : '') + ' pulls left' +
      (q.window_seconds ? ' per ' + Math.round(q.window_seconds / 3600) + ' h' : '') + ' (' + q.endpoint + ')' }));
  }
  for (const w of task.warnings || []) children.push(h('p', { class: 'hint', text: 'Note: ' + w }));
  let view = $('#task-view');
  let actions = $('#task-actions');
  if (!view) {
    view = h('div', { id: 'task-view' });
    actions = h('div', { id: 'task-actions', class: 'actions' });
    panel.replaceChildren(view, actions);
  }
  view.replaceChildren(...children);
  renderTaskActions(actions, task, finished);
}

// The buttons stay the same elements while progress events redraw the panel several
// times a second: a button replaced between the press and the release of the mouse
// would swallow the click. They are rebuilt only when the actions on offer change.
function renderTaskActions(actions, task, finished) {
  const retryable = task.state === 'failed' || task.state === 'cancelled';
  const key = [task.id, finished, retryable, !!state.user].join(' ');
  if (actions.dataset.key === key) return;
  actions.dataset.key = key;
  actions.replaceChildren();
  if (!state.user) return;
  if (!finished) actions.append(h('button', { type: 'button', id: 'task-cancel', class: 'danger', text: 'Cancel', onclick: () => taskAction(state.task, 'cancel') }));
  if (retryable) actions.append(h('button', { type: 'button', id: 'task-retry', text: 'Retry', onclick: () => taskAction(state.task, 'retry') }));
}

async function taskAction(task, action) {
  const r = await api('POST', '/api/v1/tasks/' + encodeURIComponent(task.id) + '/' + action);
  if (r.status !== 202) { toast(errorText(r)); return; }
  const updated = r.data.task || r.data;
  showTask(updated);
  loadHistory();
}

// ---- history ----

function historySection() {
  const filter = h('select', { id: 'history-state', onchange: () => loadHistory() },
    ['', 'queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'].map((s) => h('option', { value: s, text: s || 'all' })));
  return h('section', { class: 'card', 'aria-labelledby': 'history-title' },
    h('h2', { id: 'history-title', text: 'Import history' }),
    h('div', { class: 'toolbar' }, h('label', { for: 'history-state', text: 'State' }), filter,
      h('button', { type: 'button', class: 'secondary', text: 'Refresh', onclick: () => loadHistory() })),
    h('div', { class: 'table-wrap' }, h('table', { id: 'history', class: 'cards tasks' },
      h('thead', {}, h('tr', {}, ['Started', 'Source', 'Target', 'State', 'Progress', 'By', ''].map((t) => h('th', { text: t })))),
      h('tbody', {}))));
}

async function loadHistory() {
  clearTimeout(state.historyTimer);
  const body = $('#history tbody');
  if (!body) return;
  const project = state.project;
  const filter = $('#history-state').value;
  const r = await api('GET', '/api/v1/projects/' + encodeURIComponent(project) + '/tasks?limit=100' + (filter ? '&state=' + filter : ''));
  if (project !== state.project) return;
  if (r.status !== 200) { noteRow(body, errorText(r), 'error'); return; }
  const active = r.data.tasks.filter((t) => ['queued', 'running', 'waiting'].includes(t.state)).map((t) => t.id);
  if (state.active.some((id) => !active.includes(id))) loadTags();
  state.active = active;
  if (active.length) state.historyTimer = setTimeout(loadHistory, HISTORY_REFRESH_MS);
  if (!r.data.tasks.length) { noteRow(body, 'No imports' + (filter ? ' in this state.' : ' yet.')); return; }
  renderHistoryRows(body, r.data.tasks);
}

// The history's rows are kept by task (see syncRows): the refresh runs every two seconds
// while imports are under way, under the admin's mouse. The Show button is made once per
// row; the other cells are redrawn on each refresh.
function renderHistoryRows(body, tasks) {
  state.history = new Map(tasks.map((t) => [t.id, t]));
  syncRows(body, tasks, (t) => t.id, (t, row) => {
    const pct = t.state === 'succeeded' ? 100 : t.bytes_total ? Math.floor((t.bytes_done / t.bytes_total) * 100) : 0;
    const cells = [
      td('Started', when(t.created_at)),
      td('Source', h('span', { class: 'mono', text: t.source_canonical })),
      td('Target', h('span', { class: 'mono', text: t.target })),
      td('State', badge(t.state)),
      td('Progress', pct + '%'),
      td('By', t.created_by),
    ];
    if (!row.children.length) {
      row.dataset.task = t.id;
      row.append(...cells, td('', h('button', { type: 'button', class: 'secondary', text: 'Show', 'aria-label': 'Show task ' + t.id, onclick: () => showTask(state.history.get(t.id)) })));
    } else {
      cells.forEach((cell, i) => row.replaceChild(cell, row.children[i]));
    }
    row.classList.toggle('selected', !!state.task && state.task.id === t.id);
  });
}

// ---- routing ----

async function route() {
  const hash = location.hash || '#/';
  const main = $('#main');
  if (state.source) { state.source.close(); state.source = null; }
  closeRunSource();
  state.task = null;
  main.replaceChildren();
  const project = hash.match(/^#\/projects\/([^/]+)$/);
  const rules = hash.match(/^#\/projects\/([^/]+)\/sync$/);
  const run = hash.match(/^#\/projects\/([^/]+)\/sync\/runs\/([^/]+)$/);
  if (hash === '#/signin') viewSignIn(main);
  else if (project) await viewProject(main, decodeURIComponent(project[1]));
  else if (rules) await viewSync(main, decodeURIComponent(rules[1]));
  else if (run) await viewSyncRun(main, decodeURIComponent(run[1]), decodeURIComponent(run[2]));
  else await viewProjects(main);
  main.dataset.view = hash;
}

async function start() {
  $('#sign-out').addEventListener('click', signOutOrIn);
  await loadSession();
  if (!state.user && (location.hash || '#/') === '#/') history.replaceState(null, '', '#/signin');
  window.addEventListener('hashchange', route);
  await route();
}

document.addEventListener('DOMContentLoaded', start);
