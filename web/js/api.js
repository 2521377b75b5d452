// The only way the app talks to the server: the public /v1 API, JSON errors
// `{"error": {"code", "message"}}`, Bearer access token, refresh on 401 then one retry.

import * as auth from './auth.js';

export class ApiError extends Error {
  constructor(status, code, message, { retryAfter = null, details = [] } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details; // validation errors: [{field, message}]
  }
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || 'Request failed';
  let details = [];
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = Array.isArray(body.error.details) ? body.error.details : [];
    }
  } catch {
    // Not JSON (a proxy's error page, say): keep the status line.
  }
  const retryAfter = Number(response.headers.get('Retry-After')) || null;
  return new ApiError(response.status, code, message, { retryAfter, details });
}

async function send(path, { method, headers, body, signal }) {
  try {
    return await fetch(path, { method, headers, body, signal, credentials: 'omit', cache: 'no-store' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'offline', 'The server could not be reached.');
  }
}

/**
 * request('/v1/predictions', {query: {limit: 20}}) -> parsed JSON (null for 204).
 * Options: method, json (object body), form (FormData), query, auth ('required' | 'optional' |
 * 'none'), raw (return the Response), signal.
 */
export async function request(path, options = {}) {
  const { method = 'GET', json, form, query, auth: authMode = 'required', raw = false, signal } = options;
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== '') params.set(k, v);
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // the browser sets the multipart boundary
  }

  const useAuth = authMode !== 'none';
  if (useAuth && !auth.getAccessToken() && auth.hasRefreshToken()) {
    await auth.refreshAccessToken();
  }
  if (authMode === 'required' && !auth.getAccessToken()) throw new auth.SessionEndedError();

  let sentToken = null;
  const attempt = () => {
    sentToken = useAuth ? auth.getAccessToken() : null;
    const h = sentToken ? { ...headers, Authorization: `Bearer ${sentToken}` } : headers;
    return send(url, { method, headers: h, body, signal });
  };

  let response = await attempt();
  // 401 from the app; 403 from API Gateway, whose authorizer answers an expired or revoked token
  // with 403 (HTTP API authorizers cannot answer 401; docs/deploy.md, "Client contract").
  if ((response.status === 401 || response.status === 403) && sentToken) {
    // The access token expired (or was revoked): rotate the refresh token, try once more. If
    // another request already refreshed meanwhile, its new token is simply used.
    if (auth.getAccessToken() === sentToken) await auth.refreshAccessToken();
    response = await attempt();
  }
  if (!response.ok) throw await errorFrom(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

// Endpoints -------------------------------------------------------------------------------------

export const register = (email, password) =>
  request('/v1/auth/register', { method: 'POST', json: { email, password }, auth: 'none' });

export const login = (email, password) =>
  request('/v1/auth/login', { method: 'POST', json: { email, password }, auth: 'none' });

export const logout = (refreshToken) =>
  request('/v1/auth/logout', { method: 'POST', json: { refresh_token: refreshToken }, auth: 'none' });

export const logoutAll = () => request('/v1/auth/logout-all', { method: 'POST' });

/** -> a new token pair for this device; the account's other sessions end. */
export const changePassword = (currentPassword, newPassword) =>
  request('/v1/auth/password', {
    method: 'POST', json: { current_password: currentPassword, new_password: newPassword },
  });

export const me = () => request('/v1/auth/me');

export const deleteAccount = (password) => request('/v1/auth/me', { method: 'DELETE', json: { password } });

export function predict(file, { signal } = {}) {
  const form = new FormData();
  form.append('image', file, file.name || 'photo.jpg');
  return request('/v1/predict', { method: 'POST', form, auth: 'optional', signal });
}

export const listPredictions = ({ cursor, verdict, limit = 20 } = {}) =>
  request('/v1/predictions', { query: { cursor, verdict, limit } });

export const getPrediction = (id) => request(`/v1/predictions/${encodeURIComponent(id)}`);

export const deletePrediction = (id) =>
  request(`/v1/predictions/${encodeURIComponent(id)}`, { method: 'DELETE' });

export async function reportPdf(id) {
  const response = await request(`/v1/predictions/${encodeURIComponent(id)}/report.pdf`, { raw: true });
  return response.blob();
}
