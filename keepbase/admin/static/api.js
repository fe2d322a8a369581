// The dashboard's one HTTP client: JSON in and out, the PocketBase error envelope turned into
// ApiError(status, message, data). Which token to send is the caller's choice; nothing is stored here.

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data || {};
  }
}

export async function request(method, path, body, { token = "" } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = token;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "Cannot reach the server.", {});
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
  }
  if (!res.ok) {
    const message = (data && typeof data.message === "string" && data.message) || `Request failed (HTTP ${res.status}).`;
    throw new ApiError(res.status, message, data && typeof data.data === "object" ? data.data : {});
  }
  return data;
}
