// The layers whose figures come from another statistic than closure's: asked only when one of
// them is chosen, then merged into the areas' rows by code (the map and table share the rows).
import * as api from './api.js';
import { days, window_ } from './state.js';

// Each: the request for an area's figures by `level`, and how a group's figures become the row's
// (their names prefixed: both APIs have their own `wilson_low`, `below_benchmark`, ...).
const SOURCES = {
  mediation: {
    url: (state) => `/api/v1/stats/mediation?${new URLSearchParams({ area: state.area, group_by: state.level, ...window_(state) })}`,
    code: (group, level) => group.key[level],
    row: (g) => ({
      mediation_cases: g.cases,
      mediation_agreements: g.agreements,
      mediation_success_rate: g.success_rate,
      mediation_wilson_low: g.wilson_low,
      mediation_wilson_high: g.wilson_high,
      mediation_referrals: g.referred_court + g.referred_petition_office + g.referred_police,
      mediation_below: g.below_benchmark,
    }),
  },
  patrols: {
    url: (state) => `/api/v1/stats/patrols?${new URLSearchParams({ area: state.area, group_by: state.level, ...days(state) })}`,
    code: (group, level) => group[level],
    row: (g) => ({
      patrol_compliance_rate: g.compliance_rate,
      patrol_mean_coverage: g.mean_coverage,
      patrol_below: g.below_benchmark,
    }),
  },
};

/**
 * Ask for `layer`'s figures of the view in `state`: the API's benchmark, and `apply(rows)`, which
 * writes them into the rows (each with `code`); areas the API does not list (nothing counted
 * there) get nulls.
 */
export async function fetchFigures(layer, state) {
  const source = SOURCES[layer];
  const answer = await api.get(source.url(state));
  const byCode = new Map(answer.groups.map((g) => [source.code(g, state.level), source.row(g)]));
  const empty = Object.fromEntries(Object.keys(source.row({})).map((name) => [name, null]));
  return {
    benchmark: answer.benchmark,
    apply: (rows) => {
      for (const row of rows) Object.assign(row, byCode.get(row.code) ?? empty);
    },
  };
}
