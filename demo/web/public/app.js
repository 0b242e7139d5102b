// The demo's page: plain JS, no build step. Every piece of data reaches the page through
// textContent or attribute setters, never innerHTML. Reads come from /api (MySQL); changes arrive by
// Server-Sent Events and trigger a re-read.
/* global document, Node, crypto, fetch, clearTimeout, CSS, EventSource */
'use strict';

/** Builds an element: el('td', { className: 'x', onclick: fn }, 'text', child). */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const $ = (sel) => document.querySelector(sel);
const newId = () => crypto.randomUUID().replace(/-/g, '');
const money = (cents) => (Number(cents) / 100).toFixed(2);
const short = (id) => (id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id);
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '');

const state = { customers: [], orders: [], editing: null, journeys: new Map() };

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try {
    data = await res.json();
  } catch {
    data = {};
  }
  if (!res.ok) {
    const err = new Error(data.message || `HTTP ${res.status}`);
    err.status = res.status;
    err.fields = data.fields || {};
    throw err;
  }
  return data;
}

function notice(text, kind) {
  const n = $('#notice');
  n.textContent = text;
  n.className = `notice ${kind || ''}`;
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => {
    n.hidden = true;
  }, 6000);
}

/** Shows an API error on a form: field messages next to the fields, the rest below it. */
function showError(form, err) {
  for (const span of form.querySelectorAll('.field-error')) span.textContent = '';
  const fields = err.fields || {};
  let shown = false;
  for (const [field, messages] of Object.entries(fields)) {
    const span = form.querySelector(`.field-error[data-for="${CSS.escape(field)}"]`);
    if (span) {
      span.textContent = messages.join('; ');
      shown = true;
    }
  }
  const general = form.querySelector('.form-error');
  if (general)
    general.textContent = shown ? '' : `${err.status ? `${err.status}: ` : ''}${err.message}`;
}

function clearErrors(form) {
  for (const span of form.querySelectorAll('.field-error, .form-error')) span.textContent = '';
}

// ---- query side ------------------------------------------------------------------------------

async function loadReadModel() {
  try {
    const [c, o] = await Promise.all([api('GET', '/api/customers'), api('GET', '/api/orders')]);
    state.customers = c.customers;
    state.orders = o.orders;
    $('#read-error').textContent = '';
    renderCustomers();
    renderOrders();
    renderCustomerSelect();
  } catch (err) {
    $('#read-error').textContent = `Query side unavailable: ${err.message}`;
  }
}

let reloadTimer;
function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => {
    reloadTimer = undefined;
    void loadReadModel();
  }, 150);
}

function renderCustomers() {
  const body = $('#customers tbody');
  const rows = state.customers.map((c) => {
    if (state.editing === c.id) return editCustomerRow(c);
    return el(
      'tr',
      { dataset: { id: c.id } },
      el('td', { className: 'clip', title: c.name }, c.name),
      el('td', { className: 'clip', title: c.email }, c.email),
      el('td', { className: 'num' }, c.version),
      el(
        'td',
        { className: 'actions' },
        el('button', { type: 'button', onclick: () => startEdit(c.id) }, 'Edit'),
        el(
          'button',
          { type: 'button', className: 'danger', onclick: () => deleteCustomer(c) },
          'Delete',
        ),
      ),
    );
  });
  body.replaceChildren(...rows);
  if (rows.length === 0)
    body.append(el('tr', {}, el('td', { colSpan: 4, className: 'empty' }, 'No customers yet.')));
  $('#customer-count').textContent = `(${state.customers.length})`;
}

function editCustomerRow(c) {
  const form = el('form', { className: 'inline', novalidate: true, id: `edit-${c.id}` });
  const name = el('input', {
    name: 'name',
    value: c.name,
    'aria-label': 'New name',
    form: form.id,
  });
  const email = el('input', {
    name: 'email',
    value: c.email,
    'aria-label': 'New email',
    form: form.id,
  });
  const err = el('span', { className: 'form-error', role: 'alert' });
  const save = async (ev) => {
    ev.preventDefault();
    clearErrors(row);
    const body = { commandId: newId(), expectedVersion: c.version };
    if (name.value !== c.name) body.name = name.value;
    if (email.value !== c.email) body.email = email.value;
    try {
      await api('PATCH', `/api/customers/${encodeURIComponent(c.id)}`, body);
      state.editing = null;
      notice(`Saved ${c.id}; the query side follows.`, 'ok');
      renderCustomers();
    } catch (e) {
      showError(row, e);
    }
  };
  form.addEventListener('submit', save);
  const row = el(
    'tr',
    { dataset: { id: c.id }, className: 'editing' },
    el('td', {}, name, el('span', { className: 'field-error', dataset: { for: 'name' } })),
    el('td', {}, email, el('span', { className: 'field-error', dataset: { for: 'email' } })),
    el('td', { className: 'num' }, c.version),
    el(
      'td',
      { className: 'actions' },
      form,
      el('button', { type: 'submit', form: form.id }, 'Save'),
      el(
        'button',
        {
          type: 'button',
          onclick: () => {
            state.editing = null;
            renderCustomers();
          },
        },
        'Cancel',
      ),
      err,
    ),
  );
  return row;
}

function startEdit(id) {
  state.editing = id;
  renderCustomers();
  const input = document.querySelector(`#customers tr.editing input[name="name"]`);
  if (input) input.focus();
}

async function deleteCustomer(c) {
  try {
    await api('DELETE', `/api/customers/${encodeURIComponent(c.id)}`, {
      commandId: newId(),
      expectedVersion: c.version,
    });
    notice(`Delete of ${c.name} accepted; the query side follows.`, 'ok');
  } catch (e) {
    notice(`Delete failed (${e.status || 'network'}): ${e.message}`, 'error');
  }
}

function renderCustomerSelect() {
  const select = $('#create-order select[name="customerId"]');
  const current = select.value;
  select.replaceChildren(
    el('option', { value: '' }, '— choose a customer —'),
    ...state.customers.map((c) => el('option', { value: c.id }, `${c.name} <${c.email}>`)),
  );
  select.value = state.customers.some((c) => c.id === current) ? current : '';
}

function orderAction(o, label, method, suffix, body, className) {
  return el(
    'button',
    {
      type: 'button',
      className,
      onclick: async () => {
        try {
          await api(method, `/api/orders/${encodeURIComponent(o.id)}${suffix}`, {
            commandId: newId(),
            expectedVersion: o.version,
            ...(body || {}),
          });
          notice(`${label} accepted for order ${short(o.id)}.`, 'ok');
        } catch (e) {
          notice(`${label} refused (${e.status || 'network'}): ${e.message}`, 'error');
        }
      },
    },
    label,
  );
}

function addLineForm(o) {
  const sku = el('input', { name: 'sku', placeholder: 'SKU', size: 8, 'aria-label': 'SKU' });
  const qty = el('input', {
    name: 'quantity',
    type: 'number',
    value: '1',
    min: '1',
    'aria-label': 'Quantity',
    className: 'small',
  });
  const price = el('input', {
    name: 'unitPrice',
    type: 'number',
    value: '9.99',
    step: '0.01',
    min: '0',
    'aria-label': 'Unit price',
    className: 'small',
  });
  const form = el(
    'form',
    { className: 'inline', novalidate: true },
    sku,
    qty,
    price,
    el('button', { type: 'submit' }, 'Add line'),
    el('span', { className: 'field-error', dataset: { for: 'sku' } }),
    el('span', { className: 'field-error', dataset: { for: 'quantity' } }),
    el('span', { className: 'field-error', dataset: { for: 'unitPriceCents' } }),
    el('span', { className: 'form-error', role: 'alert' }),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      await api('POST', `/api/orders/${encodeURIComponent(o.id)}/lines`, {
        commandId: newId(),
        expectedVersion: o.version,
        sku: sku.value,
        quantity: qty.value === '' ? null : Number(qty.value),
        unitPriceCents: price.value === '' ? null : Math.round(Number(price.value) * 100),
      });
    } catch (e) {
      showError(form, e);
    }
  });
  return form;
}

function renderOrders() {
  const body = $('#orders tbody');
  const rows = state.orders.map((o) =>
    el(
      'tr',
      { dataset: { id: o.id } },
      el('td', { title: o.id, className: 'id' }, short(o.id)),
      el(
        'td',
        {},
        o.customerName === null
          ? el('em', {}, `${short(o.customerId)} (unknown)`)
          : el('span', { className: 'clip', title: o.customerName }, o.customerName),
      ),
      el(
        'td',
        {},
        el(
          'ul',
          { className: 'lines' },
          o.lines.map((l) =>
            el(
              'li',
              {},
              `${l.quantity} × ${l.sku} @ ${money(l.unitPriceCents)} `,
              o.status === 'open'
                ? orderAction(
                    o,
                    'Remove',
                    'DELETE',
                    `/lines/${encodeURIComponent(l.lineId)}`,
                    undefined,
                    'link',
                  )
                : null,
            ),
          ),
        ),
        o.status === 'open' ? addLineForm(o) : null,
      ),
      el('td', { className: 'num' }, money(o.totalCents)),
      el('td', {}, el('span', { className: `status ${o.status}` }, o.status)),
      el('td', { className: 'num' }, o.version),
      el(
        'td',
        { className: 'actions' },
        o.status === 'open' ? orderAction(o, 'Place', 'POST', '/place') : null,
        o.status !== 'cancelled'
          ? orderAction(o, 'Cancel', 'POST', '/cancel', { reason: 'cancelled in the demo' })
          : null,
        orderAction(o, 'Delete', 'DELETE', '', undefined, 'danger'),
      ),
    ),
  );
  body.replaceChildren(...rows);
  if (rows.length === 0)
    body.append(el('tr', {}, el('td', { colSpan: 7, className: 'empty' }, 'No orders yet.')));
  $('#order-count').textContent = `(${state.orders.length})`;
}

// ---- journeys ------------------------------------------------------------------------------

function step(label, s, extra) {
  return el(
    'span',
    { className: `step ${s.state}` },
    el('span', { className: 'dot', 'aria-hidden': 'true' }),
    el('span', { className: 'step-label' }, label),
    s.at ? el('span', { className: 'step-time' }, time(s.at)) : null,
    extra ? el('span', { className: 'step-detail' }, extra) : null,
    s.detail && s.state !== 'done' ? el('span', { className: 'step-detail' }, s.detail) : null,
  );
}

function renderJourneys() {
  const list = [...state.journeys.values()]
    .sort((a, b) => b.acceptedAt - a.acceptedAt)
    .slice(0, 12);
  $('#journeys').replaceChildren(
    ...list.map((j) => {
      const base = j.committed.at || j.acceptedAt;
      const plus = (at) => (at ? `+${Math.max(0, at - base)} ms` : '');
      return el(
        'li',
        { className: j.applied.state === 'done' ? 'journey done' : 'journey' },
        el(
          'div',
          { className: 'journey-head' },
          // The command's name until the event's type is known (an entry relayed before the
          // page looked is gone from the outbox, and the sink's dedupe table keeps no type).
          j.eventType
            ? el('strong', {}, j.eventType)
            : el('strong', { title: 'event type not seen; the command that raised it' }, j.command),
          ` ${j.aggregateType} ${short(j.aggregateId)} v${j.version}`,
          j.lagMs !== undefined ? el('span', { className: 'lag' }, `lag ${j.lagMs} ms`) : null,
        ),
        el(
          'div',
          { className: 'steps' },
          step('committed in MongoDB (outbox)', j.committed),
          step(
            'published',
            j.published,
            j.published.state === 'done' ? `${j.topic} ${plus(j.published.at)}` : '',
          ),
          step('applied in MySQL', j.applied, j.applied.state === 'done' ? plus(j.applied.at) : ''),
        ),
      );
    }),
  );
}

function mergeJourneys(list) {
  for (const j of list) state.journeys.set(j.eventId, j);
  if (state.journeys.size > 60) {
    const keep = [...state.journeys.values()]
      .sort((a, b) => b.acceptedAt - a.acceptedAt)
      .slice(0, 40);
    state.journeys = new Map(keep.map((j) => [j.eventId, j]));
  }
  renderJourneys();
}

// ---- pipeline ------------------------------------------------------------------------------

// Which server answers as MongoDB: the test harness's stand-in never passes for a real one.
const MONGO_KINDS = {
  mongod: 'a real MongoDB server',
  'stand-in': 'mongo-java-server stand-in',
  unknown: 'unknown (no answer)',
};

function stat(label, value, bad) {
  return [el('dt', {}, label), el('dd', { className: bad ? 'bad' : '' }, value)];
}

function renderPipeline(p) {
  // The first fetch and the stream's first event may cross: show the newer.
  if (p.at < (renderPipeline.lastAt || 0)) return;
  renderPipeline.lastAt = p.at;
  const items = [];
  if (p.relay.source === 'in-process') {
    items.push(stat('Relay', `${p.relay.state}, ${p.relay.role}`, p.relay.state !== 'running'));
    items.push(stat('Published', p.relay.published));
  } else if (p.relay.source === 'lease') {
    items.push(
      stat(
        'Relay',
        p.relay.active ? `active (${p.relay.owner})` : 'no active relay',
        !p.relay.active,
      ),
    );
  } else {
    items.push(stat('Relay', p.relay.error, true));
  }
  items.push(stat('MongoDB', MONGO_KINDS[p.mongo.kind] || p.mongo.kind));
  items.push(
    p.outbox.ok
      ? stat(
          'Outbox backlog',
          `${p.outbox.pending} pending, ${p.outbox.failed} failed`,
          p.outbox.failed > 0,
        )
      : stat('Outbox backlog', `unavailable (${p.outbox.error})`, true),
  );
  if (p.sink.source === 'in-process') {
    const c = p.sink.counts;
    items.push(stat('Sink', p.sink.state, p.sink.state !== 'running'));
    items.push(
      stat('Sink outcomes', `${c.applied} applied, ${c.duplicate} duplicate, ${c.stale} stale`),
    );
  } else {
    items.push(stat('Sink', 'in other processes'));
  }
  items.push(
    p.lag.ok
      ? stat('Consumer lag', `${p.lag.total} records`, p.lag.total > 0)
      : stat('Consumer lag', `unknown (${p.lag.error})`, true),
  );
  if (p.readModel.ok) {
    items.push(stat('Dead letters', p.readModel.deadLetters, p.readModel.deadLetters > 0));
    items.push(stat('Parked aggregates', p.readModel.parked, p.readModel.parked > 0));
  } else {
    items.push(stat('Read model', `unavailable (${p.readModel.error})`, true));
  }
  $('#pipeline').replaceChildren(...items.flat());
  $('#replay').disabled = !p.replayAvailable;
  $('#replay').title = p.replayAvailable
    ? ''
    : 'the sink runs elsewhere: use `cqrs-sync replay` there';
  const dead = p.readModel.ok ? p.readModel.deadLetters + p.readModel.parked : 0;
  if (dead !== renderPipeline.lastDead) {
    renderPipeline.lastDead = dead;
    void loadDeadLetters();
  }
}

async function loadDeadLetters() {
  try {
    const { deadLetters } = await api('GET', '/api/dead-letters');
    const list = $('#dead-letters');
    list.replaceChildren(
      ...deadLetters.map((d) =>
        el(
          'li',
          {},
          el(
            'div',
            { className: 'held-head' },
            el('strong', {}, d.kind),
            ` ${d.aggregateType}/${short(d.aggregateId)} v${d.version}`,
          ),
          el(
            'div',
            { className: 'held-where' },
            el('span', { title: d.eventId }, d.eventType),
            ` at ${d.topic}[${d.partition}]@${d.offset}`,
          ),
          el(
            'div',
            { className: 'error-text' },
            `${d.errorCode || ''} ${d.errorMessage || ''}`.trim(),
          ),
          el(
            'button',
            { type: 'button', onclick: () => redrive(`${d.aggregateType}/${d.aggregateId}`) },
            'Re-drive',
          ),
        ),
      ),
    );
    if (deadLetters.length === 0) list.append(el('li', { className: 'empty' }, 'None.'));
  } catch (e) {
    $('#dead-letters').replaceChildren(el('li', { className: 'error-text' }, e.message));
  }
}

async function redrive(target) {
  const form = $('#redrive');
  clearErrors(form);
  try {
    const r = await api('POST', '/api/pipeline/redrive', { target });
    notice(
      `Re-drove ${r.aggregate.aggregateType}/${r.aggregate.aggregateId}: ${r.applied} applied, ${r.stale} stale.`,
      'ok',
    );
    void loadDeadLetters();
  } catch (e) {
    showError(form, e);
  }
}

async function runVerify(repair) {
  const result = $('#verify-result');
  const list = $('#verify-drift');
  const buttons = ['#tamper', '#verify', '#verify-repair'].map((b) => $(b));
  for (const b of buttons) b.disabled = true;
  result.textContent = repair ? 'verifying and repairing…' : 'verifying…';
  try {
    const r = await api('POST', '/api/pipeline/verify', { repair });
    const found = Object.entries(r.counts)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    result.textContent = r.clean
      ? `Clean: ${r.checked} aggregates agree (${r.inFlight} in flight, ${r.durationMs} ms).`
      : `Drift: ${found} of ${r.checked} aggregates (${r.durationMs} ms)` +
        (r.repair
          ? `; ${r.repaired} repair events published: verify again once the sink applied them.`
          : '.');
    list.replaceChildren(
      ...r.drift.map((d) =>
        el(
          'li',
          { dataset: { id: d.id, class: d.class } },
          el('strong', {}, d.class),
          el('span', { title: `${d.type}/${d.id}` }, `${d.type}/${short(d.id)}`),
          el(
            'span',
            { className: 'held-where', title: d.columns.join(', ') },
            d.columns.join(', '),
          ),
        ),
      ),
    );
    if (r.more > 0) list.append(el('li', { className: 'empty' }, `… ${r.more} more`));
    if (r.drift.length === 0) list.append(el('li', { className: 'empty' }, 'No drift.'));
  } catch (e) {
    result.textContent = `Verify refused: ${e.message}`;
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// ---- wiring --------------------------------------------------------------------------------

function connect() {
  const live = $('#live');
  const source = new EventSource('/api/stream');
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
    void loadReadModel();
  });
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
  source.addEventListener('readmodel', scheduleReload);
  source.addEventListener('journeys', (ev) => mergeJourneys(JSON.parse(ev.data)));
  source.addEventListener('pipeline', (ev) => renderPipeline(JSON.parse(ev.data)));
}

function init() {
  $('#create-customer').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    try {
      const r = await api('POST', '/api/customers', {
        commandId: newId(),
        name: form.elements.name.value,
        email: form.elements.email.value,
      });
      notice(`Customer ${r.aggregateId} registered in MongoDB; watch it reach MySQL.`, 'ok');
      form.reset();
    } catch (e) {
      showError(form, e);
    }
  });
  $('#create-order').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearErrors(form);
    try {
      const r = await api('POST', '/api/orders', {
        commandId: newId(),
        customerId: form.elements.customerId.value,
      });
      notice(`Order ${short(r.aggregateId)} created; add lines once it shows on the right.`, 'ok');
    } catch (e) {
      showError(form, e);
    }
  });
  $('#redrive').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void redrive(ev.currentTarget.elements.target.value);
  });
  $('#replay').addEventListener('click', async () => {
    $('#replay-result').textContent = 'replaying…';
    try {
      const r = await api('POST', '/api/pipeline/replay', { confirm: true });
      $('#replay-result').textContent =
        `Rewound ${r.partitionsRewound} partitions and cleared ${r.tablesCleared.length} tables; the read model is rebuilding.`;
    } catch (e) {
      $('#replay-result').textContent = `Replay refused: ${e.message}`;
    }
  });
  $('#tamper').addEventListener('click', async () => {
    try {
      const r = await api('POST', '/api/pipeline/tamper', {});
      $('#verify-result').textContent =
        `Demo only: ${r.aggregateType}/${r.aggregateId} has name '${r.after}' in MySQL, edited by hand at v${r.version}.`;
      // The sink wrote nothing, so no live event comes: read the tampered row now.
      void loadReadModel();
    } catch (e) {
      $('#verify-result').textContent = `Tamper refused: ${e.message}`;
    }
  });
  $('#verify').addEventListener('click', () => void runVerify(false));
  $('#verify-repair').addEventListener('click', () => void runVerify(true));
  api('GET', '/api/journeys').then(
    (r) => mergeJourneys(r.journeys),
    () => undefined,
  );
  // The figures from the first paint on: the stream's first event can take a while.
  api('GET', '/api/pipeline').then(renderPipeline, () => undefined);
  void loadReadModel();
  connect();
}

init();
