// The supervisors' page: sign in, then one map and one table of the caller's area.
import * as api from './api.js';
import { showOverdue } from './detail.js';
import { getLang, setLang, t } from './i18n.js';
import { AreaMap, belowOf, legend } from './map.js';
import { LAYERS, OWN_FIGURES, levelOf, levelsBelow, read, window_, write } from './state.js';
import { AreaTable, sortParameter } from './table.js';

const $ = (id) => document.getElementById(id);
let state = null;
let home = null;
let areaMap = null;
let mapMade = null; // resolves once MapLibre has loaded and the map exists
let table = null;
let loading = null;
// What the current load drew: its areas, and each layer's benchmark once its figures are in.
let view = null;
// The page's settings (/dashboard/config): the basemap, whose frame the data is asked in.
let config = { basemap: null };

function highlight(code) {
  areaMap?.highlight(code);
  table.highlight(code);
}

/** Go one level down from an area of the current view (a grid shows itself). */
function drill(code) {
  const level = levelOf(code);
  if (code === state.area && level === 'grid') return;
  state = { ...state, area: code, level: levelsBelow(code)[0] };
  write(state);
  load();
}

function query(extra = {}) {
  return new URLSearchParams({ area: state.area, group_by: state.level, index: 'true', ...window_(state), ...extra });
}

/** The polygons in the basemap's frame: shifted to GCJ-02 under an AMap basemap. */
function shapes() {
  return config.basemap?.crs === 'gcj02' ? { crs: 'gcj02' } : {};
}

/** The CSV of exactly the table shown: the same query, rows in the table's order. */
function csvLink() {
  $('csv').href = `/api/v1/stats/closure.csv?${query({ sort: sortParameter(table.sort, state.level) })}`;
}

async function crumbs() {
  const nav = $('crumbs');
  // Names only: a district's boundary is megabytes the breadcrumb does not draw.
  const area = await api.get(`/api/v1/areas/${state.area}?geometry=false`);
  // The chain from the user's own area down: what lies above it is not theirs to open.
  const chain = [...(area.properties.parents ?? []), { code: area.properties.code, name: area.properties.name }];
  const start = Math.max(0, chain.findIndex((a) => a.code === home));
  nav.replaceChildren(
    ...chain.slice(start).map((a, i, shown) => {
      const link = document.createElement(i === shown.length - 1 ? 'span' : 'a');
      link.textContent = a.name;
      if (link.tagName === 'A') {
        link.href = '#';
        link.addEventListener('click', (e) => {
          e.preventDefault();
          state = { ...state, area: a.code, level: levelsBelow(a.code)[0] };
          write(state);
          load();
        });
      }
      return link;
    }),
  );
}

function controls() {
  const level = $('level');
  level.replaceChildren(
    ...levelsBelow(state.area).map((value) => {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = t(value);
      return option;
    }),
  );
  level.value = state.level;
  $('period').value = state.period;
  $('custom').hidden = state.period !== 'custom';
  $('from').value = state.from;
  $('to').value = state.to;
  const layer = $('layer');
  layer.replaceChildren(
    ...LAYERS.map((value) => {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = t(value);
      return option;
    }),
  );
  layer.value = state.layer;
  $('lang').textContent = getLang() === 'zh' ? 'English' : '中文';
}

async function weights() {
  const w = await api.get('/api/v1/stats/index-weights');
  const total = Object.values(w).reduce((a, b) => a + b, 0) || 1;
  const names = { closure_rate: 'closure', on_time_rate: 'on_time', overdue_open: 'overdue', check_in_rate: 'check_in', alerts_in_progress: 'alerts' };
  $('weights').textContent = `${t('weights')}: ${Object.entries(w).map(([k, v]) => `${t(names[k])} ${Math.round((v / total) * 100)}%`).join(' · ')}`;
}

const needsFigures = (layer) => OWN_FIGURES.includes(layer);

/** A layer's own figures (see extra.js): its module is loaded the first time one is chosen. */
async function fetchFigures(layer, current) {
  const extra = await import('./extra.js');
  return extra.fetchFigures(layer, current);
}

/** Show the view's areas in the table, with the columns of the layers whose figures are in. */
function fillTable() {
  table.show(view.rows, { layers: Object.keys(view.benchmarks), below: belowOf(state.layer) });
}

/** Colour the map by the chosen layer; a layer with figures of its own asks for them first. */
async function colour() {
  const shown = view;
  if (!shown) return; // the load under way colours the map itself
  await mapMade;
  const layer = state.layer;
  if (needsFigures(layer) && !(layer in shown.benchmarks)) {
    const figures = await fetchFigures(layer, state);
    if (view !== shown) return;
    figures.apply(shown.rows);
    shown.benchmarks[layer] = figures.benchmark;
    fillTable();
    await areaMap.draw(shown.collection, state.layer);
  } else {
    if (table.below !== belowOf(layer)) fillTable(); // the rows' marks follow the layer
    areaMap.setLayer(layer);
  }
  legend($('legend'), state.layer, shown.benchmarks[state.layer]);
}

async function load() {
  const mine = Symbol('load');
  loading = mine;
  view = null;
  document.body.dataset.ready = '';
  performance.mark('wangge-load');
  // The requests first: the map's start (a WebGL context, its worker) overlaps them. The
  // figures of another layer only when it is the one shown (the default layer needs none).
  const pending = Promise.all([
    api.get(`/api/v1/stats/closure.geojson?${query(shapes())}`),
    crumbs(),
    needsFigures(state.layer) ? fetchFigures(state.layer, state) : null,
  ]);
  if (!table) wire();
  controls();
  $('status').textContent = t('loading');
  csvLink();
  try {
    const [collection, , figures] = await pending;
    if (loading !== mine) return;
    performance.mark('wangge-data');
    for (const feature of collection.features) {
      const p = feature.properties;
      p.code = p[state.level];
      p.name = p[`${state.level}_name`];
    }
    view = { collection, rows: collection.features.map((f) => f.properties), benchmarks: { closure: collection.benchmark } };
    if (figures) {
      figures.apply(view.rows);
      view.benchmarks[state.layer] = figures.benchmark;
    }
    fillTable();
    performance.mark('wangge-table');
    await mapMade;
    if (loading !== mine) return;
    await areaMap.show(collection, state.layer);
    if (loading !== mine) return;
    // A layer chosen while the areas were on their way has its figures asked now.
    if (needsFigures(state.layer) && !(state.layer in view.benchmarks)) await colour();
    else legend($('legend'), state.layer, view.benchmarks[state.layer]);
    if (loading !== mine) return;
    $('status').textContent = `${collection.features.length} ${t('areas')}`;
    // Marks for the benchmark: from this load's start (or the page's) to a coloured map and a
    // filled table.
    performance.mark('wangge-ready');
    document.body.dataset.ready = '1';
    const overdue = await showOverdue($('overdue'), $('event'), state.area, shapes());
    await areaMap.showPoints(overdue);
  } catch (error) {
    if (loading === mine) $('status').textContent = `${t('failed')}: ${error.message}`;
  }
}

function wire() {
  mapMade = AreaMap.create($('map'), { onHover: highlight, onClick: drill, basemap: config.basemap }).then((made) => {
    areaMap = made;
    // For tests and the benchmark: the map and how many areas it draws.
    window.wangge = { map: areaMap.map, renderedCount: () => areaMap.renderedCount() };
  });
  table = new AreaTable($('table'), { onHover: highlight, onClick: drill, onSort: csvLink });
  $('level').addEventListener('change', (e) => {
    state = { ...state, level: e.target.value };
    write(state);
    load();
  });
  $('period').addEventListener('change', (e) => {
    state = { ...state, period: e.target.value };
    if (state.period !== 'custom' || (state.from && state.to)) {
      write(state);
      load();
    } else controls();
  });
  for (const id of ['from', 'to']) {
    $(id).addEventListener('change', () => {
      state = { ...state, from: $('from').value, to: $('to').value };
      if (state.from && state.to) {
        write(state);
        load();
      }
    });
  }
  $('layer').addEventListener('change', async (e) => {
    state = { ...state, layer: e.target.value };
    write(state);
    const mine = loading;
    document.body.dataset.ready = '';
    try {
      await colour();
    } catch (error) {
      $('status').textContent = `${t('failed')}: ${error.message}`;
    }
    if (loading === mine && view) document.body.dataset.ready = '1';
  });
  $('lang').addEventListener('click', () => {
    state = { ...state, lang: getLang() === 'zh' ? 'en' : 'zh' };
    setLang(state.lang);
    write(state, { replace: true });
    controls();
    table.render();
    legend($('legend'), state.layer, view?.benchmarks[state.layer]);
    weights();
  });
  $('signout').addEventListener('click', async () => {
    await api.signOut();
    window.location.assign('/dashboard');
  });
  window.addEventListener('popstate', () => {
    state = read({ area: home });
    setLang(state.lang);
    load();
  });
}

async function start(who) {
  // Admins have no area of their own: a link's area, else the first district.
  const linked = new URLSearchParams(window.location.search).get('area') ?? '';
  home = who.area_code
    ?? (/^\d{6}(\d{3}){0,3}$/.test(linked) ? linked : null)
    ?? (await api.get('/api/v1/areas?level=district&limit=1&geometry=false')).features?.[0]?.properties?.code;
  $('signin').hidden = true;
  $('board').hidden = false;
  $('who').textContent = who.display_name || who.username;
  state = read({ area: home });
  // A shared link outside the user's area opens their own area instead.
  if (who.area_code && !state.area.startsWith(home)) state = { ...state, area: home, level: levelsBelow(home)[0] };
  if (!who.area_code) home = state.area.slice(0, 6); // the breadcrumb starts at the district
  write(state, { replace: true });
  const loaded = load();
  weights();
  await loaded;
}

async function main() {
  setLang(new URLSearchParams(window.location.search).get('lang') === 'en' ? 'en' : 'zh');
  api.whenSignedOut(() => window.location.assign('/dashboard'));
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    $('signin-error').textContent = '';
    try {
      await start(await api.signIn(form.get('username'), form.get('password')));
    } catch (error) {
      $('signin-error').textContent = error.status === 401 ? t('wrong') : error.message;
    }
  });
  const [who, settings] = await Promise.all([api.session(), api.get('/dashboard/config')]);
  config = settings;
  if (who) await start(who);
  else $('signin').hidden = false;
}

main();
