// Draws one ring as a circle of slots: the bytes in flight (from head to tail, clockwise), the
// head (consumer) and tail (producer) markers, the lap count, and who is asleep waiting.
// Input is a RingStats-shaped object, as readRingStats gives it (simulation) or as the live
// stream carries it (live mode), so both modes draw the same picture.

export const COLORS = {
  producer: '#e8590c',
  consumer: '#1c7ed6',
  data: '#7048e8',
  dataLight: '#d0bfff',
  empty: '#e9ecef',
  text: '#212529',
  muted: '#868e96',
  wait: '#f08c00',
  notify: '#2f9e44',
};

const SLOTS = 64;

export function formatBytes(n) {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs < 1024) return `${Math.round(n)} B`;
  if (abs < 1024 * 1024) return `${(n / 1024).toFixed(abs < 10 * 1024 ? 1 : 0)} KiB`;
  if (abs < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(abs < 10 * 1024 ** 2 ? 1 : 0)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Sizes the canvas backing store for the device pixel ratio; returns the 2D context. */
function context(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {object} s  RingStats-like: capacity, head, tail, used, bytesIn, bytesOut,
 *                    consumerWaiting, producerWantsSpace, finished, reset
 * @param {object} opts  { producerNotified, consumerNotified (booleans: flash), title, producer, consumer (labels) }
 */
export function drawRing(canvas, s, opts = {}) {
  const { ctx, w, h } = context(canvas);
  ctx.clearRect(0, 0, w, h);
  const cx = w / 2;
  const top = opts.title ? 24 : 0;
  const cy = top + (h - top) / 2;
  // Room around the ring for the labels: two stacked lines above or below, one wide line aside.
  const outer = Math.min((h - top) / 2 - 66, w / 2 - 140);
  const inner = outer - Math.max(18, outer * 0.2);
  if (opts.title) {
    ctx.fillStyle = COLORS.text;
    ctx.font = '600 14px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillText(opts.title, cx, 4);
  }
  if (!s || !s.capacity) {
    ctx.fillStyle = COLORS.muted;
    ctx.font = '14px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.fillText('no ring', cx, cy);
    return;
  }
  const cap = s.capacity;
  const mask = cap - 1;
  const head = s.head & mask;
  const used = Math.min(s.used, cap);
  const angleOf = (pos) => -Math.PI / 2 + (2 * Math.PI * pos) / cap;
  const slotBytes = cap / SLOTS;
  const gap = Math.min(0.012, Math.PI / SLOTS / 4);

  // Slots, then the in-flight bytes over them (an interval from head, possibly wrapping).
  for (let i = 0; i < SLOTS; i++) {
    sector(ctx, cx, cy, inner, outer, angleOf(i * slotBytes) + gap, angleOf((i + 1) * slotBytes) - gap, COLORS.empty);
  }
  const spans = used === 0 ? [] : head + used <= cap ? [[head, head + used]] : [[head, cap], [0, head + used - cap]];
  for (const [from, to] of spans) {
    const first = Math.floor(from / slotBytes);
    const last = Math.ceil(to / slotBytes);
    for (let i = first; i < last; i++) {
      const a = Math.max(from, i * slotBytes);
      const b = Math.min(to, (i + 1) * slotBytes);
      if (b <= a) continue;
      const a0 = Math.max(angleOf(a), angleOf(i * slotBytes) + gap);
      const a1 = Math.min(angleOf(b), angleOf((i + 1) * slotBytes) - gap);
      if (a1 > a0) sector(ctx, cx, cy, inner, outer, a0, a1, COLORS.data);
    }
  }

  // Position 0: where every lap starts.
  ctx.strokeStyle = COLORS.muted;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(cx, cy - inner + 4);
  ctx.lineTo(cx, cy - inner - 6 - (outer - inner));
  ctx.stroke();

  const tail = (s.head + used) & mask;
  const full = used === cap;
  const together = full || used === 0;
  const producerAsleep = s.producerWantsSpace > 0;
  marker(ctx, cx, cy, outer, angleOf(tail), COLORS.producer, producerAsleep, together ? 1 : 0);
  marker(ctx, cx, cy, outer, angleOf(head), COLORS.consumer, s.consumerWaiting, together ? -1 : 0);
  const tailLine = [producerAsleep ? 'tail · asleep' : 'tail', COLORS.producer];
  const headLine = [s.consumerWaiting ? 'head · asleep' : 'head', COLORS.consumer];
  if (together) {
    labels(ctx, cx, cy, outer, angleOf(head), [tailLine, headLine]);
  } else {
    labels(ctx, cx, cy, outer, angleOf(tail), [tailLine]);
    labels(ctx, cx, cy, outer, angleOf(head), [headLine]);
  }

  // Centre: fill, bytes in flight, laps.
  const pct = (100 * used) / cap;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillStyle = COLORS.text;
  ctx.font = `600 ${Math.round(inner * 0.34)}px system-ui, sans-serif`;
  ctx.fillText(`${pct < 10 && pct > 0 ? pct.toFixed(1) : Math.round(pct)}%`, cx, cy - inner * 0.22);
  ctx.font = `${Math.max(11, Math.round(inner * 0.11))}px system-ui, sans-serif`;
  ctx.fillStyle = COLORS.muted;
  ctx.fillText(`${formatBytes(used)} in flight of ${formatBytes(cap)}`, cx, cy + inner * 0.12);
  const laps = Math.floor(Number(s.bytesIn) / cap);
  ctx.fillText(`tail lap ${laps.toLocaleString('en')} · head lap ${Math.floor(Number(s.bytesOut) / cap).toLocaleString('en')}`, cx, cy + inner * 0.3);
  if (s.consistent === false) {
    ctx.fillStyle = '#c92a2a';
    ctx.fillText('header inconsistent (as read)', cx, cy + inner * 0.48);
  } else if (s.reset || s.finished) {
    ctx.fillStyle = s.reset ? '#c92a2a' : COLORS.muted;
    ctx.fillText(s.reset ? 'RESET' : 'end of stream (FIN)', cx, cy + inner * 0.48);
  }

  // Notifications: a flash on the arc between the markers' sides.
  if (opts.producerNotified) badge(ctx, cx, cy + inner * 0.62, 'woke the consumer', COLORS.notify);
  else if (opts.consumerNotified) badge(ctx, cx, cy + inner * 0.62, 'woke the producer', COLORS.notify);
}

function sector(ctx, cx, cy, r0, r1, a0, a1, color) {
  ctx.beginPath();
  ctx.arc(cx, cy, r1, a0, a1);
  ctx.arc(cx, cy, r0, a1, a0, true);
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
}

/** A triangle just outside the band pointing at `angle`; when both markers sit on one spot
 *  (empty or full ring), `side` (-1 or 1) moves them apart along the ring. */
function marker(ctx, cx, cy, outer, angle, color, waiting, side) {
  const tip = outer + 3;
  const base = outer + 17;
  const dx = Math.cos(angle), dy = Math.sin(angle);
  const px = -dy, py = dx;
  const ox = px * side * 9, oy = py * side * 9;
  ctx.beginPath();
  ctx.moveTo(cx + dx * tip + ox, cy + dy * tip + oy);
  ctx.lineTo(cx + dx * base + px * 8 + ox, cy + dy * base + py * 8 + oy);
  ctx.lineTo(cx + dx * base - px * 8 + ox, cy + dy * base - py * 8 + oy);
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
  if (waiting) {
    ctx.strokeStyle = COLORS.wait;
    ctx.lineWidth = 2.5;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.arc(cx + dx * (base - 5) + ox, cy + dy * (base - 5) + oy, 14, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

/** Labels (one line each: [text, color]) stacked in one box, placed outside the markers at
 *  `angle` far enough that the box clears them whatever the angle, and inside the canvas. */
function labels(ctx, cx, cy, outer, angle, lines) {
  ctx.font = '600 13px system-ui, sans-serif';
  const half = Math.max(...lines.map(([t]) => ctx.measureText(t).width)) / 2;
  const halfH = lines.length * 8;
  const dx = Math.cos(angle), dy = Math.sin(angle);
  const r = outer + 30 + Math.abs(dx) * half + Math.abs(dy) * halfH;
  const dpr = window.devicePixelRatio || 1;
  const w = ctx.canvas.width / dpr;
  const h = ctx.canvas.height / dpr;
  const x = Math.min(Math.max(cx + dx * r, half + 2), w - half - 2);
  const y = Math.min(Math.max(cy + dy * r, halfH + 2), h - halfH - 2);
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  lines.forEach(([text, color], i) => {
    ctx.fillStyle = color;
    ctx.fillText(text, x, y - halfH + 8 + 16 * i);
  });
}

function badge(ctx, x, y, text, color) {
  ctx.font = '600 12px system-ui, sans-serif';
  const w = ctx.measureText(text).width + 16;
  ctx.fillStyle = color;
  ctx.beginPath();
  ctx.roundRect(x - w / 2, y - 11, w, 22, 11);
  ctx.fill();
  ctx.fillStyle = '#fff';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, x, y);
}
