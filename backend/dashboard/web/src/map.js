// The map: the areas' own boundaries are the base (an outside raster basemap only when the
// operator sets one), coloured by the chosen layer; overdue events as points. MapLibre GL JS from npm, served by the app.
import { t } from './i18n.js';

// MapLibre is a large module: it is loaded on its own (index.html preloads it), so the page signs
// in and asks for its data while the browser fetches and compiles it.
const MAPLIBRE = '/dashboard/vendor/maplibre-gl/maplibre-gl.mjs';

const GREY = '#d9d9d9';
const EMPTY = { type: 'FeatureCollection', features: [] };
const RATE_BANDS = [[0, '#d73027'], [0.9, '#fc8d59'], [0.95, '#fee08b'], [0.98, '#1a9850']];
// Each layer: the property it colours by, and its bands (lower bound, colour), lowest first.
export const LAYER_STYLES = {
  closure: { property: 'closure_rate', bands: RATE_BANDS, percent: true },
  on_time: { property: 'on_time_rate', bands: RATE_BANDS, percent: true },
  check_in: { property: 'check_in_rate', bands: RATE_BANDS, percent: true },
  overdue: { property: 'overdue_open', bands: [[0, '#1a9850'], [1, '#fee08b'], [5, '#fc8d59'], [20, '#d73027']] },
  alerts: { property: 'alerts_in_progress', bands: [[0, '#1a9850'], [1, '#fc8d59'], [2, '#d73027']] },
  composite: { property: 'composite_index', bands: [[0, '#d73027'], [60, '#fc8d59'], [80, '#fee08b'], [90, '#1a9850']] },
  mediation: { property: 'mediation_success_rate', below: 'mediation_below', bands: RATE_BANDS, percent: true },
  patrols: {
    property: 'patrol_compliance_rate',
    below: 'patrol_below',
    bands: [[0, '#d73027'], [0.7, '#fc8d59'], [0.8, '#fee08b'], [0.9, '#1a9850']],
    percent: true,
    benchmark: 0.9,
  },
};

/** What marks an area below the benchmark beyond chance on this layer. */
export const belowOf = (layer) => LAYER_STYLES[layer].below ?? 'below_benchmark';

// What the map's features carry: the code, and each layer's figure and mark.
const DRAWN = [
  'code',
  ...new Set(Object.keys(LAYER_STYLES).flatMap((layer) => [belowOf(layer), LAYER_STYLES[layer].property])),
];

function colour(layer) {
  const { property, bands } = LAYER_STYLES[layer];
  const step = ['step', ['to-number', ['get', property]], bands[0][1]];
  for (const [bound, fill] of bands.slice(1)) step.push(bound, fill);
  return ['case', ['==', ['get', property], null], GREY, step];
}

/** The operator's raster basemap under the areas, if any ({url, crs, attribution}). */
function basemapStyle(basemap) {
  if (!basemap) return { sources: {}, layers: [] };
  return {
    sources: { basemap: { type: 'raster', tiles: [basemap.url], tileSize: 256, attribution: basemap.attribution } },
    layers: [{ id: 'basemap', type: 'raster', source: 'basemap' }],
  };
}

export class AreaMap {
  /** A map in `container`, once MapLibre has loaded. */
  static async create(container, options) {
    return new AreaMap(await import(MAPLIBRE), container, options);
  }

  constructor(maplibregl, container, { onHover, onClick, basemap = null }) {
    this.hovered = null;
    const base = basemapStyle(basemap);
    this.map = new maplibregl.Map({
      container,
      // No fades: a new colouring shows at once (and the map is idle as soon as it is drawn).
      fadeDuration: 0,
      style: {
        version: 8,
        transition: { duration: 0, delay: 0 },
        sources: {
          ...base.sources,
          areas: { type: 'geojson', data: EMPTY, tolerance: 0.6 },
          hover: { type: 'geojson', data: EMPTY },
          points: { type: 'geojson', data: EMPTY },
        },
        layers: [
          { id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } },
          ...base.layers,
          // The fill's own 1-pixel outline: a line layer over thousands of grids costs seconds to draw.
          {
            id: 'area-fill', type: 'fill', source: 'areas',
            paint: { 'fill-color': colour('closure'), 'fill-opacity': 0.85, 'fill-outline-color': '#ffffff' },
          },
          {
            id: 'area-below', type: 'line', source: 'areas', filter: ['==', ['get', 'below_benchmark'], true],
            paint: { 'line-color': '#67000d', 'line-width': 2.5, 'line-dasharray': [2, 1] },
          },
          { id: 'area-hover', type: 'line', source: 'hover', paint: { 'line-color': '#08306b', 'line-width': 3 } },
          {
            id: 'overdue-points', type: 'circle', source: 'points', layout: { visibility: 'none' },
            paint: { 'circle-radius': 4, 'circle-color': '#b10026', 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 },
          },
        ],
      },
      center: [113.6, 23.6],
      zoom: 8,
      attributionControl: basemap?.attribution ? { compact: true } : false,
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    this.loaded = new Promise((resolve) => this.map.once('load', resolve));
    this.map.on('mousemove', 'area-fill', (e) => onHover(e.features[0]?.properties.code ?? null));
    this.map.on('mouseleave', 'area-fill', () => onHover(null));
    this.map.on('click', 'area-fill', (e) => e.features[0] && onClick(e.features[0].properties.code));
  }

  /** Draw the areas (features carry `code`), coloured by `layer`; resolves once painted. */
  async show(collection, layer) {
    await this.loaded;
    // Move first, then load: the tiles are cut once, at the zoom they are drawn at.
    const box = bounds(collection);
    if (box) this.map.fitBounds(box, { padding: 20, animate: false });
    await this.draw(collection, layer);
  }

  /** Draw the same areas again, with figures added to their properties, coloured by `layer`. */
  async draw(collection, layer) {
    // The map gets only what it draws: the areas' codes and the figures the layers colour by
    // (the other figures are the table's), so its worker has a tenth of the data to handle.
    const slim = collection.features.map((f) => ({
      type: 'Feature',
      geometry: f.geometry,
      properties: Object.fromEntries(DRAWN.map((name) => [name, f.properties[name]])),
    }));
    this.features = new Map(slim.map((f) => [f.properties.code, f]));
    this.highlight(null);
    // The colouring first: a new data-driven colour has the worker cut the tiles again.
    this.setLayer(layer);
    this.map.getSource('areas').setData({ type: 'FeatureCollection', features: slim });
    await new Promise((resolve) => this.map.once('idle', resolve));
  }

  setLayer(layer) {
    this.map.setPaintProperty('area-fill', 'fill-color', colour(layer));
    this.map.setFilter('area-below', ['==', ['get', belowOf(layer)], true]);
    this.map.setLayoutProperty('overdue-points', 'visibility', layer === 'overdue' ? 'visible' : 'none');
  }

  async showPoints(events) {
    await this.loaded;
    const features = events
      .filter((e) => e.location)
      .map((e) => ({ type: 'Feature', geometry: e.location, properties: { id: e.id } }));
    this.map.getSource('points').setData({ type: 'FeatureCollection', features });
  }

  /** Outline one area (its own small source: the areas' layers stay as they are). */
  highlight(code) {
    if (this.hovered === code) return;
    this.hovered = code;
    const feature = code === null ? undefined : this.features?.get(code);
    this.map.getSource('hover').setData(feature ? { type: 'FeatureCollection', features: [feature] } : EMPTY);
  }

  /** How many area features are drawn now (for tests and the benchmark). */
  renderedCount() {
    return this.map.queryRenderedFeatures({ layers: ['area-fill'] }).length;
  }
}

function bounds(collection) {
  let box = null;
  const visit = (c) => {
    if (typeof c[0] === 'number') {
      box = box ? [Math.min(box[0], c[0]), Math.min(box[1], c[1]), Math.max(box[2], c[0]), Math.max(box[3], c[1])] : [c[0], c[1], c[0], c[1]];
    } else for (const inner of c) visit(inner);
  };
  for (const feature of collection.features) if (feature.geometry) visit(feature.geometry.coordinates);
  return box && [[box[0], box[1]], [box[2], box[3]]];
}

/** The legend of a layer as DOM nodes. */
export function legend(node, layer, benchmark = LAYER_STYLES[layer].benchmark ?? 0.98) {
  const { bands, percent, property } = LAYER_STYLES[layer];
  const label = (v) => (percent ? `${Math.round(v * 1000) / 10}%` : String(v));
  node.replaceChildren();
  const title = document.createElement('strong');
  title.textContent = t(layer) + (percent ? ` (${t('benchmark')} ${label(benchmark)})` : '');
  node.append(title);
  bands.forEach(([bound, fill], i) => {
    const next = bands[i + 1]?.[0];
    const text = next === undefined ? `≥ ${label(bound)}` : `${label(bound)} – ${label(next)}`;
    node.append(swatch(fill, property === 'alerts_in_progress' && next === bound + 1 ? label(bound) : text));
  });
  node.append(swatch(GREY, t('no_data')));
  const below = swatch('transparent', t('below'));
  below.firstChild.classList.add('below');
  node.append(below);
}

function swatch(fill, text) {
  const item = document.createElement('span');
  item.className = 'swatch';
  const box = document.createElement('i');
  box.style.background = fill;
  item.append(box, document.createTextNode(text));
  return item;
}
