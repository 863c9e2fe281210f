// The visualizer page: runs the simulation (two workers over one ring in a shared wasm memory),
// draws it, and shows this host's live xway connections streamed by `xway visualize`.
import { compileCore } from './dist/ring/core.js';
import { Ring } from './dist/ring/ring.js';
import { createSharedMemory, sharedBuffer } from './dist/ring/memory.js';
import { RESERVED_BYTES } from './dist/ring/layout.js';
import { readRingStats } from './dist/ring/stats.js';
import { C, CONTROL_BYTES, MODE_BUSY, MODE_NOTIFY, S, STATE_NAMES } from './sim-shared.js';
import { COLORS, drawRing, formatBytes } from './ring-view.js';
import { Chart, RATE_INCRS, formatPercent, formatPerSecond, formatRate } from './charts.js';

const $ = (id) => document.getElementById(id);
const RATES = [0, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10,
  1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, -1];
const rateLabel = (r) => (r === 0 ? 'stalled' : r < 0 ? 'unlimited' : `${formatBytes(r)}/s`);
const num = (n) => Math.round(Number(n)).toLocaleString('en');
const SAMPLE_MS = 250;

// ---- isolation ------------------------------------------------------------------------------

const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
$('isolation').textContent = isolated ? 'cross-origin isolated' : 'not cross-origin isolated: simulation unavailable';
$('isolation').className = `pill ${isolated ? 'good' : 'bad'}`;

// ---- simulation -----------------------------------------------------------------------------

class Simulation {
  constructor() {
    this.workers = [];
    this.errors = [];
    this.ready = 0;
  }

  /** Starts a new ring and its two workers (the core must be compiled: see compileCore below). */
  start(capacity) {
    this.stop();
    this.capacity = capacity;
    this.memory = createSharedMemory({ bytes: Ring.byteLength(capacity) });
    this.ring = Ring.create(this.memory, RESERVED_BYTES, capacity);
    this.buffer = sharedBuffer(this.memory);
    this.controlBuffer = new SharedArrayBuffer(CONTROL_BYTES);
    this.control = new Int32Array(this.controlBuffer);
    this.words = new Int32Array(this.buffer);
    this.ready = 0;
    this.applyControls();
    Atomics.store(this.control, C.RUN, 1);
    const message = { memory: this.memory, offset: RESERVED_BYTES, capacity, control: this.controlBuffer };
    for (const name of ['producer', 'consumer']) {
      const worker = new Worker(new URL(`./${name}.js`, import.meta.url), { type: 'module', name });
      worker.onmessage = ({ data }) => {
        if (data.ready) this.ready++;
        if (data.error) this.fail(data.error);
      };
      worker.onerror = (event) => { event.preventDefault(); this.fail(`${name}: ${event.message}`); };
      worker.postMessage(message);
      this.workers.push(worker);
    }
    this.startedAt = performance.now();
  }

  fail(message) {
    this.errors.push(message);
    $('sim-error')?.remove();
    const p = document.createElement('p');
    p.id = 'sim-error';
    p.className = 'error';
    p.textContent = message;
    $('controls').append(p);
  }

  stop() {
    if (!this.control) return;
    Atomics.store(this.control, C.RUN, 0);
    this.poke();
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }

  /** Copies the form into the control block and wakes whoever sleeps, so changes act at once. */
  applyControls() {
    if (!this.control) return;
    const c = this.control;
    Atomics.store(c, C.WRITE_SIZE, Number($('write-size').value));
    Atomics.store(c, C.P_RATE, RATES[Number($('producer-rate').value)]);
    Atomics.store(c, C.C_RATE, $('consumer-stall').checked ? 0 : RATES[Number($('consumer-rate').value)]);
    Atomics.store(c, C.MODE, document.querySelector('input[name=mode]:checked').value === 'busy' ? MODE_BUSY : MODE_NOTIFY);
    this.poke();
  }

  poke() {
    Atomics.add(this.control, C.GEN, 1);
    Atomics.notify(this.control, C.GEN);
    // A worker asleep on the ring itself re-checks the controls when woken (a spurious wake-up
    // the ring protocol allows).
    Atomics.notify(this.words, this.ring.dataWaitIndex);
    Atomics.notify(this.words, this.ring.spaceWaitIndex);
  }

  read() {
    const s = readRingStats(this.buffer, RESERVED_BYTES);
    const c = this.control;
    return {
      ...s,
      bytesIn: Number(s.bytesIn),
      bytesOut: Number(s.bytesOut),
      producerState: STATE_NAMES[Atomics.load(c, C.P_STATE)],
      consumerState: STATE_NAMES[Atomics.load(c, C.C_STATE)],
      producerWrites: Atomics.load(c, C.P_WRITES),
      consumerReads: Atomics.load(c, C.C_READS),
      spins: (Atomics.load(c, C.P_SPINS) >>> 0) + (Atomics.load(c, C.C_SPINS) >>> 0),
      mismatches: Atomics.load(c, C.MISMATCHES),
      blocksOk: Atomics.load(c, C.BLOCKS_OK),
      blocksBad: Atomics.load(c, C.BLOCKS_BAD),
      mode: Atomics.load(c, C.MODE) === MODE_BUSY ? 'busy' : 'notify',
      ready: this.ready,
      errors: [...this.errors],
    };
  }
}

const sim = new Simulation();
let simView = null;        // the latest numbers, for the page and for tests
const history = [];        // samples for rates: { t, bytesIn, bytesOut, pn, cn }
const flash = { producer: 0, consumer: 0 };
let lastNotifies = { p: 0, c: 0 };

const simCharts = {
  throughput: new Chart($('chart-throughput'), { title: 'Throughput', format: formatRate, incrs: RATE_INCRS, series: [
    { label: 'written', color: COLORS.producer }, { label: 'read', color: COLORS.consumer }] }),
  fill: new Chart($('chart-fill'), { title: 'Ring fill', format: formatPercent, range: [0, 100], series: [
    { label: 'in flight', color: COLORS.data, fill: 'rgba(112,72,232,0.12)' }] }),
  notify: new Chart($('chart-notify'), { title: 'Notifications per second', format: formatPerSecond, series: [
    { label: 'producer → consumer', color: COLORS.producer }, { label: 'consumer → producer', color: COLORS.consumer },
    { label: 'waits', color: COLORS.muted }] }),
};

function updateRateLabels() {
  $('producer-rate-out').textContent = rateLabel(RATES[Number($('producer-rate').value)]);
  $('consumer-rate-out').textContent = $('consumer-stall').checked ? 'stalled' : rateLabel(RATES[Number($('consumer-rate').value)]);
}

/** A new ring (new memory, new workers, counters from zero); the charts keep their history
 *  unless `clearCharts`, so a change of ring size shows as a change in the charts. */
function restart(clearCharts = false) {
  history.length = 0;
  lastNotifies = { p: 0, c: 0 };
  if (clearCharts) for (const chart of Object.values(simCharts)) chart.clear();
  sim.start(Number($('ring-size').value));
}

for (const id of ['write-size', 'producer-rate', 'consumer-rate', 'consumer-stall']) {
  $(id).addEventListener('input', () => { updateRateLabels(); sim.applyControls(); });
}
for (const radio of document.querySelectorAll('input[name=mode]')) radio.addEventListener('change', () => sim.applyControls());
$('ring-size').addEventListener('change', () => restart());
$('restart').addEventListener('click', () => restart(true));
updateRateLabels();

function rateOver(samples, key, ms) {
  const last = samples[samples.length - 1];
  let first = last;
  for (let i = samples.length - 1; i >= 0 && last.t - samples[i].t <= ms; i--) first = samples[i];
  const dt = (last.t - first.t) / 1000;
  return dt > 0 ? (last[key] - first[key]) / dt : 0;
}

let lastSample = 0;
let lastText = 0;
function frame(now) {
  requestAnimationFrame(frame);
  if (!sim.control || document.body.dataset.mode !== 'sim') return;
  const v = sim.read();
  if (v.producerNotifies !== lastNotifies.p) flash.producer = now + 300;
  if (v.consumerNotifies !== lastNotifies.c) flash.consumer = now + 300;
  lastNotifies = { p: v.producerNotifies, c: v.consumerNotifies };
  drawRing($('ring'), v, { producerNotified: now < flash.producer, consumerNotified: now < flash.consumer });
  $('p-bell').classList.toggle('on', now < flash.producer);
  $('c-bell').classList.toggle('on', now < flash.consumer);

  if (now - lastSample >= SAMPLE_MS) {
    lastSample = now;
    history.push({ t: now, bytesIn: v.bytesIn, bytesOut: v.bytesOut, pn: v.producerNotifies, cn: v.consumerNotifies,
      waits: v.producerWaits + v.consumerWaits });
    while (history.length > 2 && now - history[0].t > 5000) history.shift();
    const t = Date.now() / 1000;
    simCharts.throughput.push(t, [rateOver(history, 'bytesIn', 1000), rateOver(history, 'bytesOut', 1000)]);
    simCharts.fill.push(t, [(100 * v.used) / v.capacity]);
    simCharts.notify.push(t, [rateOver(history, 'pn', 1000), rateOver(history, 'cn', 1000), rateOver(history, 'waits', 1000)]);
  }
  v.throughput = history.length > 1 ? rateOver(history, 'bytesOut', 1000) : 0;
  v.wraps = Math.floor(v.bytesIn / v.capacity);
  simView = v;
  if (now - lastText >= 100) {
    lastText = now;
    $('producer-state').textContent = v.producerWantsSpace ? `asleep: wants ${formatBytes(v.producerWantsSpace)} free` : v.producerState;
    $('consumer-state').textContent = v.consumerWaiting ? 'asleep: waiting for data' : v.consumerState;
    $('producer-card').classList.toggle('asleep', v.producerWantsSpace > 0);
    $('consumer-card').classList.toggle('asleep', v.consumerWaiting);
    $('p-writes').textContent = num(v.producerWrites);
    $('p-waits').textContent = num(v.producerWaits);
    $('p-notifies').textContent = num(v.producerNotifies);
    $('c-reads').textContent = num(v.consumerReads);
    $('c-waits').textContent = num(v.consumerWaits);
    $('c-notifies').textContent = num(v.consumerNotifies);
    $('bytes-in').textContent = num(v.bytesIn);
    $('bytes-out').textContent = num(v.bytesOut);
    $('in-flight').textContent = `${formatBytes(v.used)} (${Math.round((100 * v.used) / v.capacity)}%)`;
    $('throughput').textContent = formatRate(v.throughput);
    $('wraps').textContent = num(v.wraps);
    $('spins').textContent = num(v.spins);
    $('mismatches').textContent = num(v.mismatches);
    $('mismatches').className = v.mismatches === 0 ? 'good' : 'bad';
    $('blocks').textContent = `${num(v.blocksOk)} match${v.blocksBad ? `, ${num(v.blocksBad)} differ` : ''}`;
    $('blocks').className = v.blocksBad === 0 ? (v.blocksOk > 0 ? 'good' : '') : 'bad';
  }
}

// ---- live mode ------------------------------------------------------------------------------

const live = { source: null, snapshot: null, problem: null, selected: null, prev: new Map(), rates: new Map(), lastNotify: new Map() };
const liveCharts = {
  throughput: new Chart($('live-throughput'), { title: 'Throughput (selected connection)', format: formatRate, incrs: RATE_INCRS, series: [
    { label: 'client → server', color: COLORS.producer }, { label: 'server → client', color: COLORS.consumer }] }),
  fill: new Chart($('live-fill'), { title: 'Ring fill', format: formatPercent, range: [0, 100], series: [
    { label: 'client → server', color: COLORS.producer }, { label: 'server → client', color: COLORS.consumer }] }),
  notify: new Chart($('live-notify'), { title: 'Notifications per second', format: formatPerSecond, series: [
    { label: 'client → server ring', color: COLORS.producer }, { label: 'server → client ring', color: COLORS.consumer }] }),
};

const notifies = (r) => r.producerNotifies + r.consumerNotifies;

function startLive() {
  if (live.source) return;
  const status = $('live-status');
  status.textContent = 'connecting…';
  live.source = new EventSource('live');
  live.source.onmessage = (event) => onSnapshot(JSON.parse(event.data));
  live.source.addEventListener('problem', (event) => {
    live.problem = JSON.parse(event.data).message;
    status.textContent = `live view unavailable: ${live.problem}`;
    status.className = 'pill bad';
  });
  live.source.onerror = () => {
    if (live.source.readyState === EventSource.CLOSED) { status.textContent = 'not served here'; status.className = 'pill bad'; }
    else if (!live.problem) { status.textContent = 'reconnecting…'; status.className = 'pill'; }
  };
}

function stopLive() {
  live.source?.close();
  live.source = null;
}

function onSnapshot(snap) {
  live.problem = null;
  const status = $('live-status');
  status.textContent = `${snap.endpoints.length} endpoint${snap.endpoints.length === 1 ? '' : 's'}, ${snap.connections.length} connection${snap.connections.length === 1 ? '' : 's'}`;
  status.className = 'pill good';
  const t = snap.at / 1000;
  for (const conn of snap.connections) {
    const prev = live.prev.get(conn.id);
    const total = Number(conn.clientToServer.bytesOut) + Number(conn.serverToClient.bytesOut);
    if (prev && snap.at > prev.at) {
      const dt = (snap.at - prev.at) / 1000;
      live.rates.set(conn.id, {
        c2s: (Number(conn.clientToServer.bytesOut) - prev.c2s) / dt,
        s2c: (Number(conn.serverToClient.bytesOut) - prev.s2c) / dt,
        nc2s: (notifies(conn.clientToServer) - prev.nc2s) / dt,
        ns2c: (notifies(conn.serverToClient) - prev.ns2c) / dt,
      });
      if (notifies(conn.clientToServer) !== prev.nc2s || notifies(conn.serverToClient) !== prev.ns2c) {
        live.lastNotify.set(conn.id, { c2s: notifies(conn.clientToServer) !== prev.nc2s, s2c: notifies(conn.serverToClient) !== prev.ns2c, until: performance.now() + 400 });
      }
    }
    live.prev.set(conn.id, { at: snap.at, c2s: Number(conn.clientToServer.bytesOut), s2c: Number(conn.serverToClient.bytesOut),
      nc2s: notifies(conn.clientToServer), ns2c: notifies(conn.serverToClient), total });
  }
  const ids = new Set(snap.connections.map((c) => c.id));
  for (const id of live.prev.keys()) if (!ids.has(id)) { live.prev.delete(id); live.rates.delete(id); }
  if (!ids.has(live.selected)) {
    live.selected = snap.connections[0]?.id ?? null;
    for (const chart of Object.values(liveCharts)) chart.clear();
  }
  live.snapshot = snap;
  renderLiveTable(snap);
  const conn = snap.connections.find((c) => c.id === live.selected);
  const flashes = live.lastNotify.get(live.selected);
  const on = flashes && performance.now() < flashes.until;
  drawRing($('live-c2s'), conn?.clientToServer, { title: conn ? `client → server · port ${conn.port}` : 'client → server',
    producerNotified: on && flashes.c2s });
  drawRing($('live-s2c'), conn?.serverToClient, { title: conn ? `server → client · port ${conn.port}` : 'server → client',
    producerNotified: on && flashes.s2c });
  if (conn) {
    const r = live.rates.get(conn.id);
    if (r) {
      liveCharts.throughput.push(t, [r.c2s, r.s2c]);
      liveCharts.notify.push(t, [r.nc2s, r.ns2c]);
    }
    liveCharts.fill.push(t, [(100 * conn.clientToServer.used) / conn.clientToServer.capacity,
      (100 * conn.serverToClient.used) / conn.serverToClient.capacity]);
  }
  $('live-endpoints').textContent = snap.endpoints.length
    ? `Registered endpoints: ${snap.endpoints.map((e) => `${e.host}:${e.port} (pid ${e.pid})`).join(', ')}`
    : 'No xway endpoints are registered on this host.';
}

function renderLiveTable(snap) {
  const body = $('live-table').tBodies[0];
  const rows = snap.connections.map((conn) => {
    const tr = document.createElement('tr');
    tr.dataset.id = conn.id;
    tr.dataset.port = String(conn.port);
    if (conn.id === live.selected) tr.className = 'selected';
    const r = live.rates.get(conn.id);
    const cells = [conn.id, conn.port, conn.serverPid, conn.platform === 'xen' ? `dom${conn.clientPid}` : conn.clientPid, conn.state,
      formatBytes(Number(conn.clientToServer.bytesOut)), formatBytes(Number(conn.serverToClient.bytesOut)),
      formatBytes(conn.clientToServer.used + conn.serverToClient.used), r ? formatRate(r.c2s + r.s2c) : '–'];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = String(text);
      if (i === 5 || i === 6) td.className = i === 5 ? 'c2s' : 's2c';
      tr.append(td);
    });
    tr.addEventListener('click', () => { live.selected = conn.id; for (const ch of Object.values(liveCharts)) ch.clear(); renderLiveTable(snap); });
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    tr.innerHTML = '<td colspan="9">no xway connections on this host right now</td>';
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

// ---- tabs -----------------------------------------------------------------------------------

function show(mode) {
  document.body.dataset.mode = mode;
  $('sim').hidden = mode !== 'sim';
  $('live').hidden = mode !== 'live';
  $('tab-sim').setAttribute('aria-selected', String(mode === 'sim'));
  $('tab-live').setAttribute('aria-selected', String(mode === 'live'));
  if (mode === 'live') startLive(); else stopLive();
  if (location.hash !== `#${mode}`) history_replace(mode);
}
function history_replace(mode) { window.history.replaceState(null, '', `#${mode}`); }
$('tab-sim').addEventListener('click', () => show('sim'));
$('tab-live').addEventListener('click', () => show('live'));
window.addEventListener('hashchange', () => show(location.hash === '#live' ? 'live' : 'sim'));

// For tests and the curious: the latest numbers.
window.xwayVis = {
  sim: () => simView && { ...simView },
  live: () => ({ snapshot: live.snapshot, problem: live.problem, selected: live.selected, rates: Object.fromEntries(live.rates) }),
};

show(location.hash === '#live' ? 'live' : 'sim');
if (isolated) {
  // Browsers compile modules over 4 KiB only asynchronously on the main thread: once, up front,
  // so that creating a ring (which instantiates the core) is synchronous afterwards.
  await compileCore();
  restart();
} else {
  sim.fail('This page must be cross-origin isolated (served by `xway visualize`) for SharedArrayBuffer.');
}
requestAnimationFrame(frame);
