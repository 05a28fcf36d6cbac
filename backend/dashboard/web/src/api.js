// Calls to the app's own API. The login lives in HttpOnly cookies the browser sends by itself;
// this module never sees a token. Writes carry the login's CSRF token.
const PAGE_HEADER = { 'X-Wangge-Page': '1' };
let csrf = '';
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function whenSignedOut(callback) {
  onSignedOut = callback;
}

async function send(method, url, body, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && csrf) init.headers['X-CSRF-Token'] = csrf;
  return fetch(url, init);
}

async function parse(response) {
  const type = response.headers.get('Content-Type') || '';
  const body = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** The signed-in user ({username, role, area_code, csrf_token}), or null. */
export async function session() {
  let who = await parse(await fetch('/dashboard/session', { credentials: 'same-origin' }));
  if (!who.signed_in && who.renewable) {
    const renewed = await send('POST', '/dashboard/session/refresh', undefined, PAGE_HEADER);
    who = renewed.ok ? await renewed.json() : who;
  }
  if (!who.signed_in) return null;
  csrf = who.csrf_token;
  return who;
}

export async function signIn(username, password) {
  const who = await parse(await send('POST', '/dashboard/session', { username, password }, PAGE_HEADER));
  csrf = who.csrf_token;
  return who;
}

export async function signOut() {
  await send('DELETE', '/dashboard/session', undefined, PAGE_HEADER);
  csrf = '';
}

/** GET a JSON resource of the API; an expired access token is renewed once. */
export async function get(url, { signal } = {}) {
  let response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin', signal });
  if (response.status === 401) {
    const renewed = await send('POST', '/dashboard/session/refresh', undefined, PAGE_HEADER);
    if (!renewed.ok) {
      onSignedOut();
      throw new ApiError(401, null);
    }
    csrf = (await renewed.json()).csrf_token;
    response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin', signal });
  }
  return parse(response);
}
