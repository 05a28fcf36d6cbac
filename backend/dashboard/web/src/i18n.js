// The page's words in Chinese (the default) and English.
const WORDS = {
  zh: {
    title: '网格治理 · 一幅图一张表', username: '用户名', password: '密码', sign_in: '登录',
    sign_out: '退出', level: '层级', period: '时段', layer: '图层', csv: '下载 CSV', map: '地图',
    this_month: '本月', last_month: '上月', this_year: '今年', custom: '自定义',
    district: '区', town: '镇街', village: '村居', grid: '网格',
    closure: '结案率', on_time: '按期结案率', overdue: '逾期未结事件', check_in: '应急单元报岗率',
    alerts: '处置中警情', composite: '综合指数',
    name: '名称', code: '编码', due: '应结案数', closed: '结案数', closed_on_time: '按期结案数',
    closure_rate: '结案率', on_time_rate: '按期结案率', rework_rate: '返工率',
    median_hours_to_close: '结案时长中位数(小时)', p90_hours_to_close: '结案时长90分位(小时)',
    overdue_open: '逾期未结', wilson: '95%置信区间', check_in_rate: '报岗率',
    alerts_in_progress: '处置中警情', composite_index: '综合指数',
    overdue_list: '逾期未结事件', none: '无', loading: '加载中…', no_data: '无数据',
    below: '显著低于基准', benchmark: '基准', weights: '综合指数权重',
    wrong: '用户名或密码错误', failed: '加载失败', trail: '处理轨迹', photos: '照片',
    back: '返回', areas: '个区域', due_at: '到期', status: '状态', category: '分类',
    description: '描述',
    mediation: '调解成功率', patrols: '巡查达标率', mediation_cases: '调解结案数',
    mediation_agreements: '调解成功数', mediation_success_rate: '调解成功率',
    mediation_wilson: '调解成功率95%置信区间', mediation_referrals: '调解不成转办数',
    patrol_compliance_rate: '巡查达标率', patrol_mean_coverage: '平均覆盖率',
  },
  en: {
    title: 'Grid governance · one map, one table', username: 'Username', password: 'Password',
    sign_in: 'Sign in', sign_out: 'Sign out', level: 'Level', period: 'Period', layer: 'Layer',
    csv: 'Download CSV', map: 'Map', this_month: 'This month', last_month: 'Last month',
    this_year: 'This year', custom: 'Custom', district: 'District', town: 'Town',
    village: 'Village', grid: 'Grid', closure: 'Closure rate', on_time: 'On-time rate',
    overdue: 'Overdue open events', check_in: "Emergency units' check-in rate",
    alerts: 'Alerts in progress', composite: 'Composite index', name: 'Name', code: 'Code',
    due: 'Due', closed: 'Closed', closed_on_time: 'Closed on time', closure_rate: 'Closure rate',
    on_time_rate: 'On-time rate', rework_rate: 'Rework rate',
    median_hours_to_close: 'Median hours to close', p90_hours_to_close: 'p90 hours to close',
    overdue_open: 'Overdue open', wilson: 'Wilson 95% interval', check_in_rate: 'Check-in rate',
    alerts_in_progress: 'Alerts in progress', composite_index: 'Composite index',
    overdue_list: 'Overdue open events', none: 'None', loading: 'Loading…', no_data: 'No data',
    below: 'Below the benchmark beyond chance', benchmark: 'Benchmark',
    weights: 'Composite index weights', wrong: 'Wrong username or password',
    failed: 'Could not load', trail: 'Trail', photos: 'Photos', back: 'Back', areas: 'areas',
    due_at: 'Due', status: 'Status', category: 'Category', description: 'Description',
    mediation: 'Mediation success rate', patrols: 'Patrol compliance',
    mediation_cases: 'Mediation cases', mediation_agreements: 'Agreements',
    mediation_success_rate: 'Success rate', mediation_wilson: 'Success rate 95% interval',
    mediation_referrals: 'Referred on',
    patrol_compliance_rate: 'Patrol compliance', patrol_mean_coverage: 'Mean coverage',
  },
};

let lang = 'zh';

export function setLang(value) {
  lang = value === 'en' ? 'en' : 'zh';
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const node of document.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll('[data-t-label]')) {
    node.setAttribute('aria-label', t(node.dataset.tLabel));
  }
}

export function getLang() {
  return lang;
}

export function t(key) {
  return WORDS[lang][key] ?? WORDS.zh[key] ?? key;
}
