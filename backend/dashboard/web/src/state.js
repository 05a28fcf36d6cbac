// What the page shows lives in its URL (area, level, period, layer), so a link can be shared.
export const LEVELS = ['district', 'town', 'village', 'grid'];
export const CODE_LENGTH = { district: 6, town: 9, village: 12, grid: 15 };
export const PERIODS = ['this_month', 'last_month', 'this_year', 'custom'];
export const LAYERS = ['closure', 'on_time', 'overdue', 'check_in', 'alerts', 'composite', 'mediation', 'patrols'];
// The layers whose figures come from a statistic of their own (extra.js), not closure's.
export const OWN_FIGURES = ['mediation', 'patrols'];

export function levelOf(code) {
  return LEVELS.find((level) => CODE_LENGTH[level] === code.length) ?? 'district';
}

/** The levels a view of `area` may be grouped by: its own when it is a grid, else those below. */
export function levelsBelow(area) {
  const own = LEVELS.indexOf(levelOf(area));
  return own === LEVELS.length - 1 ? ['grid'] : LEVELS.slice(own + 1);
}

export function read(defaults) {
  const query = new URLSearchParams(window.location.search);
  const state = {
    area: query.get('area') || defaults.area,
    level: query.get('level') || '',
    period: PERIODS.includes(query.get('period')) ? query.get('period') : 'this_month',
    from: query.get('from') || '',
    to: query.get('to') || '',
    layer: LAYERS.includes(query.get('layer')) ? query.get('layer') : 'closure',
    lang: query.get('lang') === 'en' ? 'en' : 'zh',
  };
  if (!/^\d{6}(\d{3}){0,3}$/.test(state.area)) state.area = defaults.area;
  if (!levelsBelow(state.area).includes(state.level)) state.level = levelsBelow(state.area)[0];
  return state;
}

export function write(state, { replace = false } = {}) {
  const query = new URLSearchParams({ area: state.area, level: state.level, period: state.period, layer: state.layer });
  if (state.period === 'custom') {
    query.set('from', state.from);
    query.set('to', state.to);
  }
  if (state.lang === 'en') query.set('lang', 'en');
  const url = `${window.location.pathname}?${query}`;
  if (url === `${window.location.pathname}${window.location.search}`) return;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
}

// Periods are Beijing-time days: the statistics count events due in [from, to).
const OFFSET = '+08:00';

function beijingToday(plusDays = 0) {
  // The local date in Asia/Shanghai, whatever the browser's own zone.
  const when = new Date(Date.now() + plusDays * 86400e3);
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(when);
  const [year, month, day] = parts.split('-').map(Number);
  return { year, month, day };
}

const pad = (n) => String(n).padStart(2, '0');
const start = (year, month, day = 1) => `${year}-${pad(month)}-${pad(day)}T00:00:00${OFFSET}`;

/** The window's query parameters: `from`, and `to` unless it is now. */
export function window_(state) {
  const today = beijingToday();
  if (state.period === 'last_month') {
    const year = today.month === 1 ? today.year - 1 : today.year;
    const month = today.month === 1 ? 12 : today.month - 1;
    return { from: start(year, month), to: start(today.year, today.month) };
  }
  if (state.period === 'this_year') return { from: start(today.year, 1) };
  if (state.period === 'custom' && state.from && state.to) {
    const end = new Date(`${state.to}T00:00:00${OFFSET}`);
    end.setUTCDate(end.getUTCDate() + 1); // the last day is included
    const e = new Date(end.getTime() + 8 * 3600e3);
    return {
      from: `${state.from}T00:00:00${OFFSET}`,
      to: start(e.getUTCFullYear(), e.getUTCMonth() + 1, e.getUTCDate()),
    };
  }
  return { from: start(today.year, today.month) };
}

/** The same window as local days, for the APIs that count days (`to` exclusive; today included). */
export function days(state) {
  const { from, to } = window_(state);
  const tomorrow = beijingToday(1);
  return { from: from.slice(0, 10), to: (to ?? start(tomorrow.year, tomorrow.month, tomorrow.day)).slice(0, 10) };
}
