// The side panel: the current area's overdue open events, and one event's detail with its
// trail and photos. Only what the API gives is shown: personal fields it leaves out stay out.
import { get } from './api.js';
import { getLang, t } from './i18n.js';

let categories = null;

/** A category's name in the page's language (the code until the list has come). */
async function categoryName(code) {
  categories ??= get('/api/v1/categories').then((list) => new Map(list.map((c) => [c.code, c])));
  const category = (await categories).get(code);
  return category ? (getLang() === 'en' ? category.name_en : category.name_zh) : code;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }) : '–');

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** The area's overdue open events, listed; their locations come in the map's frame (`crs`). */
export async function showOverdue(list, panel, area, frame = {}) {
  panel.hidden = true;
  const query = new URLSearchParams({ area, limit: '100', ...frame });
  const { items } = await get(`/api/v1/stats/overdue?${query}`);
  const names = await Promise.all(items.map((event) => categoryName(event.category)));
  list.replaceChildren(
    ...(items.length
      ? items.map((event, i) => {
          const item = el('li');
          const button = el('button', `${names[i]} · ${t('due_at')} ${when(event.due_at)}`, 'link');
          button.type = 'button';
          button.addEventListener('click', () => showEvent(panel, event.id));
          item.append(button);
          return item;
        })
      : [el('li', t('none'))]),
  );
  return items;
}

export async function showEvent(panel, id) {
  const path = `/api/v1/events/${encodeURIComponent(id)}`;
  const [event, trail, photos] = await Promise.all([get(path), get(`${path}/actions`), get(`${path}/attachments`)]);
  panel.replaceChildren();
  const close = el('button', t('back'), 'link');
  close.type = 'button';
  close.addEventListener('click', () => {
    panel.hidden = true;
  });
  const facts = el('dl');
  const fact = (label, value) => facts.append(el('dt', t(label)), el('dd', value ?? '–'));
  fact('category', await categoryName(event.category));
  fact('status', event.status);
  fact('due_at', when(event.due_at));
  fact('description', event.description);
  for (const contact of event.contacts ?? []) facts.append(el('dt', contact.role ?? ''), el('dd', [contact.name, contact.phone].filter(Boolean).join(' ')));
  const steps = el('ol', undefined, 'trail');
  for (const action of trail) steps.append(el('li', `${when(action.created_at)} ${action.action}: ${action.from_status ?? ''} → ${action.to_status}${action.note ? ` · ${action.note}` : ''}`));
  const gallery = el('div', undefined, 'photos');
  for (const photo of photos.items ?? []) {
    const img = el('img');
    img.src = photo.url;
    img.alt = photo.filename ?? photo.sha256;
    img.loading = 'lazy';
    gallery.append(img);
  }
  panel.append(close, el('h3', event.id), facts, el('h4', t('trail')), steps, el('h4', t('photos')), gallery);
  panel.hidden = false;
}
