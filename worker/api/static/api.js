// The page talks to queue-hooks only through the public API (contract §8), with the token a
// person signed in with. The token lives in sessionStorage: gone when the browser tab closes.

const TOKEN_KEY = "queue-hooks.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An answer that is not a success: the §8 error object, or what we could make of the answer. */
export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status; // 0 when the API could not be reached at all
    this.code = code || "";
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page, an empty body): the status line is all we have
  }
  const detail = body && typeof body.detail === "string" && body.detail
    ? body.detail
    : `${response.status} ${response.statusText || "error"}`;
  return new ApiError(response.status, detail, body && body.id);
}

/** One call of §8. `query` values that are arrays become repeated parameters (`id=1&id=2`). */
export async function call(method, path, { query, body } = {}) {
  const url = new URL("api" + path, document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    for (const one of [].concat(value)) {
      if (one !== undefined && one !== null && one !== "") url.searchParams.append(key, one);
    }
  }
  const headers = { Accept: "application/json" };
  const secret = token.get();
  if (secret) headers["X-Webitel-Access"] = secret;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "");
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

const hooksPath = (queueId) => `/call_center/queues/${encodeURIComponent(queueId)}/hooks`;

export const api = {
  queues: (page, size) => call("GET", "/call_center/queues", { query: { page, size } }),
  events: () => call("GET", "/events"),
  schemas: (q, size) => call("GET", "/schemas", { query: { q, size } }),
  hooks: (queueId, page, size) => call("GET", hooksPath(queueId), { query: { page, size } }),
  createHook: (queueId, body) => call("POST", hooksPath(queueId), { body }),
  patchHook: (queueId, id, body) => call("PATCH", `${hooksPath(queueId)}/${id}`, { body }),
  deleteHooks: (queueId, ids) => call("DELETE", hooksPath(queueId), { query: { id: ids } }),
};
