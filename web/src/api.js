// Calls to reportroot: the session endpoints and the Graph report endpoints, always with
// the X-Requested-With header the server requires before it accepts the session cookie.

const HEADERS = { 'X-Requested-With': 'reportroot' };

/** An API failure, with a plain sentence for people and what to do about it. */
export class ApiError extends Error {
  constructor(status, sentence, detail, serverMessage) {
    super(sentence);
    this.status = status;
    this.detail = detail || '';
    this.serverMessage = serverMessage || '';
  }
}

const SIGNIN_HINT =
  'Open a new sign-in link (the operator runs reportroot signin-link --data DIR --tenant TENANT_ID) or paste a new access token.';

/** Turns a failed response into an ApiError whose message says what happened and what to do. */
async function failure(resp) {
  let code = '';
  let message = '';
  let requestId = resp.headers.get('request-id') || '';
  try {
    const body = await resp.json();
    code = body?.error?.code || '';
    message = body?.error?.message || '';
  } catch {
    // Not Graph's envelope: keep the status alone.
  }
  const detail = [code, message, requestId && `request-id ${requestId}`].filter(Boolean).join(' · ');
  switch (resp.status) {
    case 401:
      return new ApiError(401, `Your session has expired or is not valid. ${SIGNIN_HINT}`, detail, message);
    case 403:
      return new ApiError(
        403,
        'This identity is not allowed to read these reports: the token lacks the Reports.Read.All permission (or an administrator role that may read usage reports). Sign in with a token that has it.',
        detail,
      );
    case 429: {
      const wait = Number(resp.headers.get('retry-after')) || 60;
      return new ApiError(
        429,
        `The server is limiting how often reports may be requested. Wait ${wait} seconds, then try again.`,
        detail,
      );
    }
    default:
      if (resp.status >= 500) {
        return new ApiError(
          resp.status,
          `The server could not answer (status ${resp.status}). Try again in a moment; if it keeps happening, give the operator the request id.`,
          detail,
        );
      }
      return new ApiError(resp.status, `The request failed (status ${resp.status}): ${message || 'no details'}.`, detail);
  }
}

async function call(url, init = {}) {
  let resp;
  try {
    resp = await fetch(url, {
      credentials: 'same-origin',
      ...init,
      headers: { ...HEADERS, ...(init.headers || {}) },
    });
  } catch {
    throw new ApiError(0, 'The server cannot be reached. Check that reportroot is running, then reload the page.');
  }
  if (!resp.ok) throw await failure(resp);
  return resp;
}

export async function session() {
  return (await call('/session')).json();
}

export async function signIn(body) {
  const resp = await call('/signin', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return resp.json();
}

export async function signOut() {
  await call('/signout', { method: 'POST' });
}

/** The URL of a report function with its argument, on v1.0 (CSV) or beta (JSON). */
export function reportUrl(version, fn, period, query) {
  const arg = period ? `(period='${period}')` : '';
  return `/${version}/reports/${fn}${arg}${query ? `?${query}` : ''}`;
}

/** A summary report's rows as JSON. */
export async function rows(fn, period) {
  const resp = await call(reportUrl('beta', fn, period, '$format=application/json'));
  return (await resp.json()).value || [];
}

/** One page of a detail report: `{ value, next }`; `next` is the @odata.nextLink. */
export async function page(urlOrFn, period, top) {
  const url = urlOrFn.startsWith('/') || urlOrFn.startsWith('http')
    ? urlOrFn
    : reportUrl('beta', urlOrFn, period, `$format=application/json&$top=${top}`);
  const body = await (await call(url)).json();
  return { value: body.value || [], next: body['@odata.nextLink'] || null };
}

/**
 * Downloads a report's CSV: the report call answers 302 to a short-lived signed link, which
 * fetch follows (HEAD, so nothing is transferred twice); the browser then downloads the
 * link itself, which needs no credentials.
 */
export async function downloadCsv(fn, period) {
  const resp = await call(reportUrl('v1.0', fn, period), { method: 'HEAD' });
  const a = document.createElement('a');
  a.href = resp.url;
  a.download = '';
  document.body.append(a);
  a.click();
  a.remove();
}
