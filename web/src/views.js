// The three views: Office activations, active users per service (with the daily trend), and
// the user detail table. Each renders into a container from the report endpoints' JSON.

import * as api from './api.js';
import { chartFigure, dataTable, el, formatNumber } from './charts.js';

const SERVICES = [
  ['exchange', 'Exchange'],
  ['oneDrive', 'OneDrive'],
  ['sharePoint', 'SharePoint'],
  ['skypeForBusiness', 'Skype for Business'],
  ['yammer', 'Yammer'],
  ['teams', 'Teams'],
  ['office365', 'Office 365'],
];

const PLATFORMS = [
  ['windows', 'Windows'],
  ['mac', 'Mac'],
  ['android', 'Android'],
  ['ios', 'iOS'],
  ['windows10Mobile', 'Windows 10 Mobile'],
];

function downloads(items) {
  const bar = el('div', { class: 'downloads', role: 'group', 'aria-label': 'Download the reports as CSV' });
  for (const [label, fn, period] of items) {
    const b = el('button', { type: 'button', class: 'secondary', 'data-download': fn }, `Download ${label} (CSV)`);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api.downloadCsv(fn, period);
      } catch (e) {
        window.dispatchEvent(new CustomEvent('rr-error', { detail: e }));
      } finally {
        b.disabled = false;
      }
    });
    bar.append(b);
  }
  return bar;
}

function section(title, intro) {
  const s = el('section', { class: 'view-section' });
  s.append(el('h2', {}, title));
  if (intro) s.append(el('p', { class: 'intro' }, intro));
  return s;
}

/** Office activations: per product type, and per platform. Returns the refresh date seen. */
export async function activations(root) {
  const [users, counts] = await Promise.all([
    api.rows('getOffice365ActivationsUserCounts'),
    api.rows('getOffice365ActivationCounts'),
  ]);
  const s = section('Office activations', 'Users assigned each Office product, how many of them activated it, and on shared computers; then the activations per platform.');
  const types = users.map((r) => r.productType);
  const perType = [
    ['Assigned', 'assigned'],
    ['Activated', 'activated'],
    ['Shared computer activation', 'sharedComputerActivation'],
  ];
  s.append(
    chartFigure({
      id: 'chart-activations-users',
      title: 'Assigned, activated and shared-computer activations per product type',
      type: 'bar',
      categories: types,
      categoryTitle: 'Product type',
      valueTitle: 'Users',
      datasets: perType.map(([label, key]) => ({ label, data: users.map((r) => r[key]) })),
      table: dataTable(
        'Users per product type',
        ['Product Type', 'Assigned', 'Activated', 'Shared Computer Activation'],
        users.map((r) => [r.productType, r.assigned, r.activated, r.sharedComputerActivation]),
        'table-activations-users',
      ),
    }).fig,
  );
  s.append(
    chartFigure({
      id: 'chart-activations-platforms',
      title: 'Activations per platform and product type',
      type: 'bar',
      stacked: true,
      categories: counts.map((r) => r.productType),
      categoryTitle: 'Product type',
      valueTitle: 'Activations',
      datasets: PLATFORMS.map(([key, label]) => ({ label, data: counts.map((r) => r[key]) })),
      table: dataTable(
        'Activations per platform',
        ['Product Type', ...PLATFORMS.map(([, l]) => l)],
        counts.map((r) => [r.productType, ...PLATFORMS.map(([k]) => r[k])]),
        'table-activations-platforms',
      ),
    }).fig,
  );
  s.append(
    downloads([
      ['activations per user count', 'getOffice365ActivationsUserCounts'],
      ['activations per platform', 'getOffice365ActivationCounts'],
      ['activations per user', 'getOffice365ActivationsUserDetail'],
    ]),
  );
  root.replaceChildren(s);
  return (users[0] || counts[0])?.reportRefreshDate || null;
}

/** Active vs inactive users per service for a period, and the daily trend. */
export async function activeUsers(root, period) {
  const [services, daily] = await Promise.all([
    api.rows('getOffice365ServicesUserCounts', period),
    api.rows('getOffice365ActiveUserCounts', period),
  ]);
  const days = period.slice(1);
  const s = section(`Active users, last ${days} days`, 'Licensed users with activity in each service within the period (active) and without (inactive), and the users active on each day.');
  const row = services[0] || {};
  s.append(
    chartFigure({
      id: 'chart-services',
      title: `Active and inactive users per service (${period})`,
      type: 'bar',
      horizontal: true,
      stacked: true,
      categories: SERVICES.map(([, l]) => l),
      categoryTitle: 'Service',
      valueTitle: 'Users',
      datasets: [
        { label: 'Active', data: SERVICES.map(([k]) => row[`${k}Active`] ?? 0) },
        { label: 'Inactive', data: SERVICES.map(([k]) => row[`${k}Inactive`] ?? 0) },
      ],
      table: dataTable(
        `Active and inactive users per service, ${period}`,
        ['Service', 'Active', 'Inactive'],
        SERVICES.map(([k, l]) => [l, row[`${k}Active`] ?? 0, row[`${k}Inactive`] ?? 0]),
        'table-services',
      ),
    }).fig,
  );
  const trend = [...daily].sort((a, b) => (a.reportDate < b.reportDate ? -1 : 1));
  s.append(
    chartFigure({
      id: 'chart-trend',
      title: `Active users per day and service (${period})`,
      type: 'line',
      categories: trend.map((r) => r.reportDate),
      categoryTitle: 'Report date',
      valueTitle: 'Active users',
      datasets: SERVICES.map(([k, l]) => ({ label: l, data: trend.map((r) => r[k]) })),
      table: dataTable(
        `Active users per day, ${period}`,
        ['Report Date', ...SERVICES.map(([, l]) => l)],
        trend.map((r) => [r.reportDate, ...SERVICES.map(([k]) => r[k])]),
        'table-trend',
      ),
    }).fig,
  );
  s.append(
    downloads([
      [`services user counts ${period}`, 'getOffice365ServicesUserCounts', period],
      [`active user counts ${period}`, 'getOffice365ActiveUserCounts', period],
    ]),
  );
  root.replaceChildren(s);
  return row.reportRefreshDate || daily[0]?.reportRefreshDate || null;
}

const DETAIL_COLUMNS = [
  ['displayName', 'Display Name'],
  ['userPrincipalName', 'User Principal Name'],
  ['isDeleted', 'Is Deleted'],
  ['exchangeLastActivityDate', 'Exchange Last Activity'],
  ['oneDriveLastActivityDate', 'OneDrive Last Activity'],
  ['sharePointLastActivityDate', 'SharePoint Last Activity'],
  ['skypeForBusinessLastActivityDate', 'Skype Last Activity'],
  ['yammerLastActivityDate', 'Yammer Last Activity'],
  ['teamsLastActivityDate', 'Teams Last Activity'],
  ['assignedProducts', 'Assigned Products'],
];

function cellText(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'boolean') return v ? 'Yes' : 'No';
  return String(v);
}

/** The user detail table: pages of 100 from the JSON report, sortable and filterable. */
export async function userDetail(root, period) {
  const PAGE = 100;
  const state = { rows: [], next: null, sort: null, asc: true, filter: '' };
  const s = section(`User details, last ${period.slice(1)} days`, 'One row per user, loaded a page at a time. Sorting and filtering apply to the users loaded so far.');
  const controls = el('div', { class: 'table-controls' });
  const label = el('label', { for: 'user-filter' }, 'Filter users');
  const filter = el('input', { id: 'user-filter', type: 'search', autocomplete: 'off' });
  const status = el('p', { class: 'table-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'users-status' });
  const more = el('button', { type: 'button', 'data-testid': 'load-more' }, `Load ${PAGE} more`);
  controls.append(label, filter, more);
  const wrap = el('div', { class: 'table-wrap wide', tabindex: '0', role: 'region', 'aria-label': 'User details' });
  const table = el('table', { 'data-testid': 'table-users' });
  table.append(el('caption', {}, `Users and their last activity per service (${period})`));
  const head = el('tr');
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  table.append(thead, tbody);
  wrap.append(table);

  const headers = DETAIL_COLUMNS.map(([key, text]) => {
    const th = el('th', { scope: 'col', 'aria-sort': 'none' });
    const b = el('button', { type: 'button', class: 'sort' }, text);
    b.addEventListener('click', () => {
      state.asc = state.sort === key ? !state.asc : true;
      state.sort = key;
      render();
    });
    th.append(b);
    head.append(th);
    return [key, th];
  });

  function render() {
    const q = state.filter.trim().toLowerCase();
    let rows = q
      ? state.rows.filter((r) => DETAIL_COLUMNS.some(([k]) => cellText(r[k]).toLowerCase().includes(q)))
      : [...state.rows];
    if (state.sort) {
      const k = state.sort;
      const dir = state.asc ? 1 : -1;
      rows.sort((a, b) => cellText(a[k]).localeCompare(cellText(b[k])) * dir);
    }
    for (const [key, th] of headers) {
      th.setAttribute('aria-sort', state.sort === key ? (state.asc ? 'ascending' : 'descending') : 'none');
    }
    tbody.replaceChildren(
      ...rows.map((r) => {
        const tr = el('tr');
        DETAIL_COLUMNS.forEach(([k], i) => tr.append(el(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : {}, cellText(r[k]))));
        return tr;
      }),
    );
    status.textContent = `Showing ${formatNumber(rows.length)} of ${formatNumber(state.rows.length)} users loaded${state.next ? '; more are available' : '; all users are loaded'}.`;
    more.hidden = !state.next;
  }

  async function load(urlOrFn) {
    more.disabled = true;
    try {
      const p = await api.page(urlOrFn, period, PAGE);
      state.rows.push(...p.value);
      state.next = p.next;
      render();
    } finally {
      more.disabled = false;
    }
  }

  filter.addEventListener('input', () => {
    state.filter = filter.value;
    render();
  });
  more.addEventListener('click', () => load(state.next).catch((e) => window.dispatchEvent(new CustomEvent('rr-error', { detail: e }))));
  s.append(controls, status, wrap, downloads([[`active user detail ${period}`, 'getOffice365ActiveUserDetail', period]]));
  await load('getOffice365ActiveUserDetail');
  root.replaceChildren(s);
  return state.rows[0]?.reportRefreshDate || null;
}
