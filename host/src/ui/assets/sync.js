// The web UI's sync pages: a project's rules (schedule, last and next run, Run now), the
// form that creates or edits a rule with a live preview of what it selects right now,
// and a run's page, live while it runs. It uses app.js's helpers (h, api, td, badge …),
// loaded before it; the same rules as app.js apply: textContent only, no inline script.
'use strict';

const sync = {
  previewTimer: 0,
  previewSeq: 0,
  editing: null, // the rule being edited, or null for a new one
  runSource: null,
};

const PREVIEW_DELAY_MS = 600;

function syncLink(project) {
  return h('a', { href: '#/projects/' + encodeURIComponent(project) + '/sync', id: 'sync-link', text: 'Sync rules →' });
}

function rulesPath(project) {
  return '/api/v1/projects/' + encodeURIComponent(project) + '/sync-rules';
}

function scheduleText(rule) {
  const s = rule.schedule;
  if (!s) return 'manual';
  if (s.cron) return s.cron + ' (' + (s.timezone || 'UTC') + ')';
  return 'every ' + s.interval + (s.jitter ? ' ± ' + s.jitter : '');
}

function countsText(c) {
  return c ? c.copied + ' copied, ' + c.unchanged + ' unchanged, ' + c.failed + ' failed' : '';
}

async function viewSync(main, project) {
  state.project = project;
  main.append(h('p', {}, h('a', { href: '#/projects/' + encodeURIComponent(project), text: '← Project ' + project })),
    h('h1', { id: 'sync-title' }, 'Sync rules of ', h('span', { class: 'mono', text: project })));
  const list = h('section', { class: 'card', 'aria-labelledby': 'rules-title' },
    h('h2', { id: 'rules-title', text: 'Rules' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'rules', class: 'cards' },
      h('thead', {}, h('tr', {}, ['Name', 'Source', 'Schedule', 'Last run', 'Next run', ''].map((t) => h('th', { text: t })))),
      h('tbody', {}))));
  main.append(list);
  if (state.user) main.append(ruleForm(project));
  await loadRules(project);
}

async function loadRules(project) {
  const body = $('#rules tbody');
  if (!body) return;
  const r = await api('GET', rulesPath(project));
  if (r.status !== 200) { noteRow(body, errorText(r), 'error'); return; }
  if (!r.data.rules.length) { noteRow(body, 'No rules yet: create one below.'); return; }
  body.replaceChildren(...r.data.rules.map((rule) => {
    const last = rule.last_run;
    const lastCell = last
      ? h('span', {}, badge(last.state), ' ', h('a', { href: '#/projects/' + encodeURIComponent(project) + '/sync/runs/' + last.id, text: when(last.started_at) }), ' ', countsText(last.counts))
      : 'never';
    const actions = state.user ? h('span', { class: 'actions' },
      h('button', { type: 'button', text: 'Run now', 'aria-label': 'Run ' + rule.name + ' now', onclick: () => runNow(project, rule) }),
      h('button', { type: 'button', class: 'secondary', text: 'Edit', onclick: () => editRule(rule) }),
      h('button', { type: 'button', class: 'secondary', text: rule.enabled ? 'Disable' : 'Enable', onclick: () => toggleRule(project, rule) }),
      h('button', { type: 'button', class: 'secondary', text: 'Delete', onclick: () => deleteRule(project, rule) })) : '';
    return h('tr', { dataset: { rule: rule.id } },
      td('Name', h('span', { text: rule.name }), rule.enabled ? '' : ' (disabled)'),
      td('Source', h('span', { class: 'mono', text: rule.source.registry + '/' + rule.source.repositories.join(', ') })),
      td('Schedule', scheduleText(rule)),
      td('Last run', lastCell),
      td('Next run', rule.next_run_at ? when(rule.next_run_at) : '–'),
      td('', actions));
  }));
}

async function runNow(project, rule) {
  const r = await api('POST', rulesPath(project) + '/' + rule.id + '/run');
  if (r.status === 202) {
    location.hash = '#/projects/' + encodeURIComponent(project) + '/sync/runs/' + r.data.run.id;
  } else {
    toast(errorText(r));
    loadRules(project);
  }
}

async function toggleRule(project, rule) {
  const r = await api('POST', rulesPath(project) + '/' + rule.id + (rule.enabled ? '/disable' : '/enable'));
  if (r.status !== 200) toast(errorText(r));
  loadRules(project);
}

async function deleteRule(project, rule) {
  if (!confirm('Delete the rule ' + rule.name + ' and its runs? The images it copied stay.')) return;
  const r = await api('DELETE', rulesPath(project) + '/' + rule.id);
  if (r.status !== 204) toast(errorText(r));
  loadRules(project);
}

// Lists typed with commas or spaces.
function words(value) {
  return value.split(/[\s,]+/).filter(Boolean);
}

function field(id, label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input,
    hint ? h('p', { class: 'hint', text: hint }) : null,
    h('p', { id: id + '-msg', class: 'field-msg', 'aria-live': 'polite' }));
}

function input(id, attrs) {
  return h('input', Object.assign({ type: 'text', id, autocomplete: 'off', spellcheck: 'false', oninput: schedulePreview }, attrs || {}));
}

function ruleForm(project) {
  const form = h('form', { id: 'rule-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); saveRule(project); } },
    field('rule-name', 'Name', input('rule-name', { required: true })),
    field('rule-registry', 'Source registry', input('rule-registry', { placeholder: 'docker.io', value: 'docker.io' })),
    field('rule-repositories', 'Repositories', input('rule-repositories', { placeholder: 'library/nginx, prometheus/*' }), 'Exactly, or by glob; commas or spaces between them.'),
    field('rule-include', 'Include tags', input('rule-include', { placeholder: '1.27.*' }), 'Globs; leave empty for every tag.'),
    field('rule-exclude', 'Exclude tags', input('rule-exclude', { placeholder: '*-rc*' })),
    field('rule-semver', 'Semver range', input('rule-semver', { placeholder: '>=1.25 <2' })),
    field('rule-newest', 'Keep the newest', input('rule-newest', { type: 'number', min: '1', placeholder: 'all' })),
    field('rule-platforms', 'Platforms', input('rule-platforms', { placeholder: 'linux/amd64 (empty: all)' })),
    field('rule-cron', 'Cron schedule', input('rule-cron', { placeholder: '0 3 * * * (empty: manual only)' })),
    field('rule-timezone', 'Time zone', input('rule-timezone', { placeholder: 'UTC' })),
    h('div', { class: 'field' }, h('label', {}, h('input', { type: 'checkbox', id: 'rule-backup' }), ' Keep the old image under a backup tag before overwriting')),
    h('div', { class: 'toolbar' },
      h('button', { type: 'submit', id: 'rule-save', text: 'Save rule' }),
      h('button', { type: 'button', class: 'secondary', text: 'New rule', onclick: () => editRule(null) })),
    h('p', { id: 'rule-msg', class: 'field-msg', role: 'alert' }));
  const preview = h('div', { id: 'rule-preview' },
    h('h3', { text: 'Preview: what a run would do now' }),
    h('p', { id: 'preview-summary', class: 'hint', 'aria-live': 'polite', text: 'Fill in a source to see the tags it selects.' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'preview', class: 'cards' },
      h('thead', {}, h('tr', {}, ['Repository', 'Tag', 'Action', 'Why', 'Size'].map((t) => h('th', { text: t })))),
      h('tbody', {}))));
  return h('section', { class: 'card', 'aria-labelledby': 'rule-form-title' },
    h('h2', { id: 'rule-form-title', text: 'New rule' }), form, preview);
}

function ruleBody() {
  const v = (id) => $('#' + id).value.trim();
  const body = {
    name: v('rule-name'),
    source: { registry: v('rule-registry'), repositories: words(v('rule-repositories')) },
    tags: {},
    platforms: words(v('rule-platforms')),
    policy: { backup: $('#rule-backup').checked },
  };
  if (v('rule-include')) body.tags.include = words(v('rule-include'));
  if (v('rule-exclude')) body.tags.exclude = words(v('rule-exclude'));
  if (v('rule-semver')) body.tags.semver = v('rule-semver');
  if (v('rule-newest')) body.tags.newest = Number(v('rule-newest'));
  if (v('rule-cron')) body.schedule = { cron: v('rule-cron'), timezone: v('rule-timezone') || 'UTC' };
  return body;
}

function showFieldError(r) {
  for (const msg of document.querySelectorAll('#rule-form .field-msg')) msg.textContent = '';
  const f = r.data && r.data.error && r.data.error.field;
  const id = { name: 'rule-name', 'source.registry': 'rule-registry', 'source.repositories': 'rule-repositories', tags: 'rule-include', platforms: 'rule-platforms', schedule: 'rule-cron', 'schedule.cron': 'rule-cron', 'schedule.timezone': 'rule-timezone' }[f];
  const target = id ? $('#' + id + '-msg') : $('#rule-msg');
  target.textContent = errorText(r);
  target.className = 'field-msg error';
}

function schedulePreview() {
  clearTimeout(sync.previewTimer);
  sync.previewTimer = setTimeout(preview, PREVIEW_DELAY_MS);
}

async function preview() {
  const body = ruleBody();
  if (!body.source.repositories.length) return;
  if (!body.name) body.name = 'preview';
  const seq = ++sync.previewSeq;
  $('#preview-summary').textContent = 'Asking the source…';
  const r = await api('POST', rulesPath(state.project) + '/preview', body);
  if (seq !== sync.previewSeq) return;
  const rows = $('#preview tbody');
  if (r.status !== 200) {
    $('#preview-summary').textContent = errorText(r);
    rows.replaceChildren();
    return;
  }
  const t = r.data.totals;
  $('#preview-summary').textContent = r.data.error
    ? r.data.error.message
    : t.copy + ' to copy (' + bytes(t.bytes_to_copy) + '), ' + t.unchanged + ' unchanged, ' + t.filtered + ' filtered out';
  rows.replaceChildren(...r.data.items.map((i) => h('tr', { dataset: { action: i.action } },
    td('Repository', h('span', { class: 'mono', text: i.source_repository })),
    td('Tag', h('span', { class: 'mono', text: i.tag || shortDigest(i.source_digest || '') })),
    td('Action', badge(i.action)),
    td('Why', i.reason),
    td('Size', i.bytes ? bytes(i.bytes) : '–'))));
}

function editRule(rule) {
  sync.editing = rule;
  $('#rule-form-title').textContent = rule ? 'Edit ' + rule.name : 'New rule';
  const set = (id, value) => { $('#' + id).value = value || ''; };
  set('rule-name', rule && rule.name);
  set('rule-registry', rule ? rule.source.registry : 'docker.io');
  set('rule-repositories', rule && rule.source.repositories.join(', '));
  const globs = (list) => (list || []).map((p) => typeof p === 'string' ? p : p.glob || p.regex).join(', ');
  set('rule-include', rule && globs(rule.tags.include));
  set('rule-exclude', rule && globs(rule.tags.exclude));
  set('rule-semver', rule && rule.tags.semver);
  set('rule-newest', rule && rule.tags.newest);
  set('rule-platforms', rule && rule.platforms.join(', '));
  set('rule-cron', rule && rule.schedule && rule.schedule.cron);
  set('rule-timezone', rule && rule.schedule && rule.schedule.timezone);
  $('#rule-backup').checked = !!(rule && rule.policy.backup);
  $('#rule-name').focus();
  if (rule) schedulePreview();
}

async function saveRule(project) {
  const body = ruleBody();
  const r = sync.editing
    ? await api('PUT', rulesPath(project) + '/' + sync.editing.id, body)
    : await api('POST', rulesPath(project), body);
  if (r.status !== 200 && r.status !== 201) { showFieldError(r); return; }
  toast('Saved the rule ' + r.data.name);
  editRule(null);
  loadRules(project);
}

// ---- one run ----

async function viewSyncRun(main, project, id) {
  state.project = project;
  main.append(h('p', {}, h('a', { href: '#/projects/' + encodeURIComponent(project) + '/sync', text: '← Sync rules' })),
    h('h1', { id: 'run-title', text: 'Sync run' }),
    h('section', { class: 'card', id: 'run', 'aria-live': 'polite' },
      h('p', { id: 'run-summary' }),
      h('div', { class: 'table-wrap' }, h('table', { id: 'run-items', class: 'cards' },
        h('thead', {}, h('tr', {}, ['Repository', 'Tag', 'Outcome', 'Why', 'Size'].map((t) => h('th', { text: t })))),
        h('tbody', {})))));
  const source = new EventSource('/api/v1/sync-runs/' + encodeURIComponent(id) + '/events');
  sync.runSource = source;
  const onRun = (e) => renderRun(JSON.parse(e.data));
  source.addEventListener('run', onRun);
  source.addEventListener('end', (e) => { onRun(e); source.close(); });
  source.onerror = async () => {
    // The run may be unknown, or the session gone: show what the API says.
    if (source.readyState !== EventSource.CLOSED) return;
    const r = await api('GET', '/api/v1/sync-runs/' + encodeURIComponent(id));
    if (r.status === 200) renderRun(r.data); else $('#run-summary').textContent = errorText(r);
  };
}

function renderRun(run) {
  const title = $('#run-title');
  if (!title) return;
  title.textContent = 'Sync run of ' + run.rule_name;
  const summary = $('#run-summary');
  summary.replaceChildren(badge(run.state), ' ', run.trigger.replace('_', '-') + ' run, started ' + when(run.started_at),
    run.phase ? ' · ' + run.phase : '',
    run.waiting_until ? ' · waiting for quota until ' + when(run.waiting_until) : '',
    run.quota ? ' · source quota: ' + run.quota.remaining + (run.quota.limit != null ? ' of ' + run.quota.limit : '') + ' pulls left' : '',
    ' · ' + countsText(run.counts) + ' · ' + bytes(run.bytes),
    run.error ? h('span', { class: 'error', text: ' · ' + run.error.message }) : '');
  const body = $('#run-items tbody');
  if (!run.items.length) { noteRow(body, run.state === 'running' ? 'Listing the source…' : 'No items.'); return; }
  syncRows(body, run.items, (i) => i.source_repository + ':' + (i.tag || i.source_digest), (i, row) => {
    row.dataset.outcome = i.outcome;
    row.replaceChildren(
      td('Repository', h('span', { class: 'mono', text: i.source_repository })),
      td('Tag', h('span', { class: 'mono', text: i.tag || shortDigest(i.source_digest || '') })),
      td('Outcome', badge(i.outcome)),
      td('Why', i.error ? i.error.message : i.reason),
      td('Size', i.bytes ? bytes(i.bytes) : '–'));
  });
}

function closeRunSource() {
  if (sync.runSource) { sync.runSource.close(); sync.runSource = null; }
}
