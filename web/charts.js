// Rolling time-series charts (the last 60 seconds) drawn with uPlot, served from the package.
import uPlot from './vendor/uplot/uPlot.esm.js';

const WINDOW_S = 60;

export class Chart {
  /**
   * @param {HTMLElement} el
   * @param {{ title: string, incrs?: number[], series: {label: string, color: string, fill?: string}[], format: (v: number) => string, range?: [number, number] }} spec
   */
  constructor(el, spec) {
    this.el = el;
    this.format = spec.format;
    this.data = [[], ...spec.series.map(() => [])];
    const fmt = (v) => (v == null ? '–' : spec.format(v));
    this.plot = new uPlot({
      title: spec.title,
      width: Math.max(240, el.clientWidth),
      height: 170,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: {
        x: { time: true },
        y: spec.range ? { range: spec.range } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: '#868e96', grid: { stroke: '#f1f3f5' }, ticks: { stroke: '#dee2e6' }, space: 70,
          incrs: [1, 2, 5, 10, 15, 30, 60],
          values: (_u, vals) => vals.map((v) => new Date(v * 1000).toLocaleTimeString('en-GB')) },
        { stroke: '#868e96', grid: { stroke: '#f1f3f5' }, ticks: { stroke: '#dee2e6' }, size: 70,
          incrs: spec.incrs, values: (_u, vals) => vals.map(fmt) },
      ],
      series: [
        { value: (_u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleTimeString('en-GB')) },
        ...spec.series.map((s) => ({
          label: s.label, stroke: s.color, width: 2, fill: s.fill, points: { show: false }, value: (_u, v) => fmt(v),
        })),
      ],
    }, this.data, el);
    new ResizeObserver(() => {
      const width = Math.max(240, this.el.clientWidth);
      if (width !== this.plot.width) this.plot.setSize({ width, height: 170 });
    }).observe(el);
  }

  /** Adds one sample (t in seconds since the epoch) and redraws. */
  push(t, values) {
    this.data[0].push(t);
    values.forEach((v, i) => this.data[i + 1].push(v));
    while (this.data[0].length > 1 && this.data[0][0] < t - WINDOW_S) for (const col of this.data) col.shift();
    this.plot.setData(this.data);
  }

  clear() {
    for (const col of this.data) col.length = 0;
    this.plot.setData(this.data);
  }
}

export const formatRate = (v) => {
  const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 || Math.abs(v) >= 10 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
};
/** Tick steps for byte rates: powers of two of B/s, KiB/s, MiB/s, GiB/s. */
export const RATE_INCRS = Array.from({ length: 40 }, (_, i) => 2 ** i);
export const formatPercent = (v) => `${Math.round(v)}%`;
export const formatPerSecond = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k/s` : `${Math.round(v * 10) / 10}/s`);
