// Charts (Chart.js, only the parts used) with what every chart here gets: a colour-blind-safe
// palette (Okabe–Ito) plus dash patterns, labelled axes, an HTML legend of toggle buttons,
// numbers on hover and on keyboard focus (arrow keys walk the points), and a data table.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
Chart.defaults.color = '#1f2328';
Chart.defaults.animation = false;

/** Okabe & Ito's palette, distinguishable with every common colour-vision deficiency. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#000000'];
const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3], [4, 4], [10, 2], [1, 3]];

const fmt = new Intl.NumberFormat('en-US');
export const formatNumber = (n) => fmt.format(n);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}
export { el };

/** A table of `rows` (arrays of cells) under `columns`, with a caption. */
export function dataTable(caption, columns, rows, testid) {
  const wrap = el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption });
  const table = el('table', { 'data-testid': testid });
  table.append(el('caption', {}, caption));
  const head = el('tr');
  columns.forEach((c, i) => head.append(el('th', { scope: 'col', class: i ? 'num' : '' }, c)));
  const thead = el('thead');
  thead.append(head);
  table.append(thead);
  const body = el('tbody');
  for (const r of rows) {
    const tr = el('tr');
    r.forEach((cell, i) => {
      if (i === 0) tr.append(el('th', { scope: 'row' }, String(cell)));
      else tr.append(el('td', { class: 'num', 'data-value': String(cell) }, typeof cell === 'number' ? formatNumber(cell) : String(cell)));
    });
    body.append(tr);
  }
  table.append(body);
  wrap.append(table);
  return wrap;
}

function legend(chart, datasets) {
  const list = el('ul', { class: 'legend', 'aria-label': 'Legend: press a series to hide or show it' });
  datasets.forEach((d, i) => {
    const li = el('li');
    const b = el('button', { type: 'button', 'aria-pressed': 'true' });
    const swatch = el('span', { class: `swatch swatch-${i % PALETTE.length}`, 'aria-hidden': 'true' });
    b.append(swatch, document.createTextNode(d.label));
    b.addEventListener('click', () => {
      const visible = chart.isDatasetVisible(i);
      chart.setDatasetVisibility(i, !visible);
      b.setAttribute('aria-pressed', String(!visible));
      chart.update();
    });
    li.append(b);
    list.append(li);
  });
  return list;
}

/** Arrow keys move the highlighted point (left/right: category; up/down: series). */
function keyboard(canvas, chart, categories, datasets) {
  let index = -1;
  let series = 0;
  const show = () => {
    const active = [{ datasetIndex: series, index }];
    chart.setActiveElements(active);
    chart.tooltip.setActiveElements(active, { x: 0, y: 0 });
    chart.update();
    const value = datasets[series].data[index];
    canvas.setAttribute('aria-description', `${categories[index]}, ${datasets[series].label}: ${formatNumber(value)}`);
  };
  canvas.addEventListener('keydown', (e) => {
    const visible = datasets.map((_, i) => i).filter((i) => chart.isDatasetVisible(i));
    if (!visible.length) return;
    if (!visible.includes(series)) series = visible[0];
    const pos = visible.indexOf(series);
    if (e.key === 'ArrowRight') index = Math.min(categories.length - 1, index + 1);
    else if (e.key === 'ArrowLeft') index = Math.max(0, index - 1);
    else if (e.key === 'ArrowDown') series = visible[(pos + 1) % visible.length];
    else if (e.key === 'ArrowUp') series = visible[(pos - 1 + visible.length) % visible.length];
    else if (e.key === 'Home') index = 0;
    else if (e.key === 'End') index = categories.length - 1;
    else return;
    if (index < 0) index = 0;
    e.preventDefault();
    show();
  });
  canvas.addEventListener('blur', () => {
    chart.setActiveElements([]);
    chart.tooltip.setActiveElements([], { x: 0, y: 0 });
    chart.update();
  });
}

/**
 * A chart figure: title, chart, legend and the accessible table beside it.
 * `type` is 'bar' or 'line'; `categories` the category axis's values; `datasets` [{label, data}].
 */
export function chartFigure({ id, title, type, categories, datasets, categoryTitle, valueTitle, stacked = false, horizontal = false, table }) {
  const fig = el('figure', { class: 'chart-card', id, 'aria-labelledby': `${id}-title` });
  const caption = el('figcaption', { id: `${id}-title` }, title);
  const body = el('div', { class: 'chart-body' });
  const holder = el('div', { class: 'chart-holder' });
  const canvas = el('canvas', {
    role: 'img',
    tabindex: '0',
    'aria-label': `${title}. Chart; use the arrow keys to read values, or see the table beside it.`,
  });
  holder.append(canvas);
  const side = el('div', { class: 'chart-side' });
  body.append(holder, side);
  fig.append(caption, body);
  const sets = datasets.map((d, i) => ({
    label: d.label,
    data: d.data,
    backgroundColor: PALETTE[i % PALETTE.length],
    borderColor: PALETTE[i % PALETTE.length],
    borderDash: type === 'line' ? DASHES[i % DASHES.length] : undefined,
    borderWidth: type === 'line' ? 2 : 0,
    pointRadius: type === 'line' && categories.length > 40 ? 0 : 3,
    pointHoverRadius: 5,
  }));
  const valueAxis = { beginAtZero: true, stacked, title: { display: true, text: valueTitle }, ticks: { precision: 0 } };
  const categoryAxis = { stacked, title: { display: true, text: categoryTitle } };
  const chart = new Chart(canvas, {
    type,
    data: { labels: categories, datasets: sets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      indexAxis: horizontal ? 'y' : 'x',
      interaction: { mode: 'nearest', intersect: false },
      scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: { label: (ctx) => `${ctx.dataset.label}: ${formatNumber(horizontal ? ctx.parsed.x : ctx.parsed.y)}` },
        },
      },
    },
  });
  side.append(legend(chart, datasets));
  if (table) side.append(table);
  keyboard(canvas, chart, categories, datasets);
  return { fig, chart };
}
