// The REST API as the console uses it: the browser's session cookie authenticates, and every unsafe request
// carries the CSRF token of GET /api/v1/auth/session in X-CSRFToken (docs/api.md, "Authentication").

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The API answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

let csrfToken = "";

/**
 * One API call with the session and the CSRF token: {status, body, etag}. A refusal throws ApiError, whose
 * body holds the API's `message` and `details` (field path -> messages). `headers` adds request headers
 * (If-Match for a conditional save).
 */
export async function request(method, path, { body, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (method !== "GET") sent["X-CSRFToken"] = csrfToken;
  const response = await fetch(path, {
    method,
    headers: sent,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: `The API answered ${response.status} with a body that is not JSON.` };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { status: response.status, body: parsed, etag: response.headers.get("ETag"), headers: response.headers };
}

const call = (method, path, body) => request(method, path, { body }).then((answer) => answer.body);

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

/** GET a list with the total the API counts in X-Total-Count: {items, total}. */
export async function getWithTotal(path) {
  const { body, headers } = await request("GET", path);
  return { items: body, total: Number(headers.get("X-Total-Count") || body.length) };
}

/** Who is signed in ({authenticated, username, roles}); keeps the CSRF token for later requests. */
export async function session() {
  const answer = await get("/api/v1/auth/session");
  csrfToken = answer.csrfToken;
  return answer;
}

export async function login(username, password) {
  const answer = await post("/api/v1/auth/login", { username, password });
  csrfToken = answer.csrfToken; // Django rotates the token at sign-in
  return answer;
}

export async function logout() {
  await post("/api/v1/auth/logout");
  return session(); // a fresh token for the next sign-in
}

/** A query string from an object, skipping empty values: query({status: "failed"}) -> "?status=failed". */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}
