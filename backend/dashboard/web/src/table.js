// The table: the same areas as the map, the same figures, sortable by each column.
import { t } from './i18n.js';

const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);
const num = (v) => (v === null || v === undefined ? '–' : String(v));
const hours = (v) => (v === null || v === undefined ? '–' : v.toFixed(1));
const score = (v) => (v === null || v === undefined ? '–' : v.toFixed(1));
const interval = (low, high) => (low === null || low === undefined ? '–' : `${pct(low)} – ${pct(high)}`);

// key: what the column shows and sorts by; label: its heading's word.
export const COLUMNS = [
  { key: 'name', label: 'name', text: (p) => p.name },
  { key: 'code', label: 'code', text: (p) => p.code },
  { key: 'due', label: 'due', text: (p) => num(p.due) },
  { key: 'closed', label: 'closed', text: (p) => num(p.closed) },
  { key: 'closed_on_time', label: 'closed_on_time', text: (p) => num(p.closed_on_time) },
  { key: 'closure_rate', label: 'closure_rate', text: (p) => pct(p.closure_rate) },
  { key: 'on_time_rate', label: 'on_time_rate', text: (p) => pct(p.on_time_rate) },
  { key: 'rework_rate', label: 'rework_rate', text: (p) => pct(p.rework_rate) },
  { key: 'median_hours_to_close', label: 'median_hours_to_close', text: (p) => hours(p.median_hours_to_close) },
  { key: 'p90_hours_to_close', label: 'p90_hours_to_close', text: (p) => hours(p.p90_hours_to_close) },
  { key: 'overdue_open', label: 'overdue_open', text: (p) => num(p.overdue_open) },
  { key: 'wilson_low', label: 'wilson', text: (p) => interval(p.wilson_low, p.wilson_high) },
  { key: 'check_in_rate', label: 'check_in_rate', text: (p) => pct(p.check_in_rate) },
  { key: 'alerts_in_progress', label: 'alerts_in_progress', text: (p) => num(p.alerts_in_progress) },
  { key: 'composite_index', label: 'composite_index', text: (p) => score(p.composite_index) },
  // The columns of a layer with figures of its own, shown once that layer's figures are in.
  { key: 'mediation_cases', label: 'mediation_cases', layer: 'mediation', text: (p) => num(p.mediation_cases) },
  { key: 'mediation_agreements', label: 'mediation_agreements', layer: 'mediation', text: (p) => num(p.mediation_agreements) },
  { key: 'mediation_success_rate', label: 'mediation_success_rate', layer: 'mediation', text: (p) => pct(p.mediation_success_rate) },
  { key: 'mediation_wilson_low', label: 'mediation_wilson', layer: 'mediation', text: (p) => interval(p.mediation_wilson_low, p.mediation_wilson_high) },
  { key: 'mediation_referrals', label: 'mediation_referrals', layer: 'mediation', text: (p) => num(p.mediation_referrals) },
  { key: 'patrol_compliance_rate', label: 'patrol_compliance_rate', layer: 'patrols', text: (p) => pct(p.patrol_compliance_rate) },
  { key: 'patrol_mean_coverage', label: 'patrol_mean_coverage', layer: 'patrols', text: (p) => pct(p.patrol_mean_coverage) },
];

// Rows laid out at a time: the browser takes seconds to lay out thousands of rows, so the rest
// follow as the table is scrolled to its end.
const CHUNK = 300;

export class AreaTable {
  constructor(table, { onHover, onClick, onSort = () => {} }) {
    this.table = table;
    this.rows = [];
    this.sorted = [];
    this.more = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.append();
    });
    this.sort = { key: 'code', descending: false };
    // The layers whose columns are shown, and the property marking a row below the benchmark.
    this.layers = new Set();
    this.below = 'below_benchmark';
    this.byCode = new Map();
    table.tBodies[0].addEventListener('mouseover', (e) => onHover(e.target.closest('tr')?.dataset.code ?? null));
    table.tBodies[0].addEventListener('mouseleave', () => onHover(null));
    table.tBodies[0].addEventListener('click', (e) => {
      const row = e.target.closest('tr');
      if (row) onClick(row.dataset.code);
    });
    table.tHead.addEventListener('click', (e) => {
      const key = e.target.closest('th')?.dataset.key;
      if (!key) return;
      this.sort = { key, descending: this.sort.key === key ? !this.sort.descending : key !== 'name' && key !== 'code' };
      this.render();
      onSort(this.sort);
    });
  }

  /** Show one row per feature's properties (each with `code` and `name`). */
  show(rows, { layers = [], below = 'below_benchmark' } = {}) {
    this.rows = rows;
    this.layers = new Set(layers);
    this.below = below;
    this.render();
  }

  columns() {
    return COLUMNS.filter((column) => !column.layer || this.layers.has(column.layer));
  }

  render() {
    const { key, descending } = this.sort;
    this.sorted = [...this.rows].sort((a, b) => compare(a[key], b[key], descending ? -1 : 1));
    this.table.dataset.rows = String(this.sorted.length);
    const head = this.table.tHead.rows[0];
    head.replaceChildren(
      ...this.columns().map((column) => {
        const th = document.createElement('th');
        th.dataset.key = column.key;
        th.scope = 'col';
        th.textContent = t(column.label);
        if (column.key === key) th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
        return th;
      }),
    );
    this.byCode.clear();
    this.table.tBodies[0].replaceChildren();
    this.append();
  }

  /** Lay out the next rows; the last one, once in view, brings the next. */
  append() {
    const body = this.table.tBodies[0];
    const start = body.rows.length;
    const rows = this.sorted.slice(start, start + CHUNK).map((p) => {
      const tr = document.createElement('tr');
      tr.dataset.code = p.code;
      if (p[this.below]) tr.classList.add('below');
      for (const column of this.columns()) {
        const td = document.createElement('td');
        td.textContent = column.text(p);
        tr.append(td);
      }
      this.byCode.set(p.code, tr);
      return tr;
    });
    body.append(...rows);
    this.more.disconnect();
    if (body.rows.length < this.sorted.length) this.more.observe(body.rows[body.rows.length - 1]);
  }

  highlight(code) {
    for (const row of this.table.querySelectorAll('tr.hover')) row.classList.remove('hover');
    const row = code === null ? null : this.byCode.get(code);
    if (row) row.classList.add('hover');
  }
}

/** The API's `sort` for this order, so the CSV lists the rows as the table shows them. */
export function sortParameter({ key, descending }, level) {
  // The CSV is closure's: a column of another layer's figures lists it by code.
  if (COLUMNS.find((column) => column.key === key)?.layer) return level;
  const column = { code: level, name: `${level}_name` }[key] ?? key;
  return `${descending ? '-' : ''}${column}`;
}

// Missing values sort last whichever the direction; text by code point, as the API's `sort`.
function compare(a, b, direction) {
  const missing = (v) => v === null || v === undefined;
  if (missing(a) || missing(b)) return missing(a) - missing(b);
  if (typeof a === 'string') return (a < b ? -1 : a > b ? 1 : 0) * direction;
  return (a - b) * direction;
}
