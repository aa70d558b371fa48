// The daemon's REST API as the browser sees it: a session cookie (set by POST /api/v1/login,
// HttpOnly) plus the CSRF token on every state-changing request (docs/web.md).

export interface Me {
  user: string;
  csrf: string;
  expires_at?: string;
  global: string[];
  devices: Record<string, string[]>;
}

export interface Device {
  name: string;
  url: string;
  state: string;
  viewers: number;
  groups: string[];
  description?: string;
  error?: string;
}

export interface MoEvent {
  id: number;
  time: string;
  device: string;
  severity: string;
  name: string;
  text: string;
  count: number;
  acked_by?: string;
}

/** An API answer that was not 2xx, with the daemon's error code and message. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

let me: Me | null = null;
const expiredHandlers: Array<() => void> = [];

export function current(): Me | null {
  return me;
}

export function setMe(m: Me | null): void {
  me = m;
}

/** Called when a request answers 401: the session expired or was ended. */
export function onExpired(f: () => void): void {
  expiredHandlers.push(f);
}

/** May the user do ACTION on DEVICE (or globally)? Accepts `attach` and `console.attach`. */
export function may(action: string, device?: string): boolean {
  if (!me) return false;
  const list = device ? (me.devices[device] ?? []) : me.global;
  const short = action.replace(/^console\./, "");
  return list.some((a) => a === action || a === short || a === `console.${short}` || a === "admin");
}

export async function request(method: string, path: string, body?: unknown, accept = "application/json"): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && me) headers["X-CSRF-Token"] = me.csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!res.ok) {
    let code = "http";
    let message = `${res.status} ${res.statusText}`;
    try {
      const j = await res.json();
      if (j && j.error) {
        code = j.error.code ?? code;
        message = j.error.message ?? message;
      }
    } catch {
      /* not JSON */
    }
    if (res.status === 401 && !path.endsWith("/login")) {
      me = null;
      for (const f of expiredHandlers) f();
    }
    throw new ApiError(res.status, code, message);
  }
  return res;
}

export async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(method, path, body);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export async function text(path: string): Promise<string> {
  const res = await request("GET", path, undefined, "text/plain");
  return await res.text();
}

export const enc = encodeURIComponent;

export async function login(user: string, password: string): Promise<Me> {
  await json("POST", "/api/v1/login", { user, password });
  return await loadMe();
}

export async function loadMe(): Promise<Me> {
  const m = await json<Me>("GET", "/api/v1/me");
  m.global = m.global ?? [];
  m.devices = m.devices ?? {};
  me = m;
  return m;
}

export async function logout(): Promise<void> {
  try {
    await request("POST", "/api/v1/logout");
  } finally {
    me = null;
  }
}

/** ws:// or wss:// URL of an API path on this origin. */
export function wsUrl(path: string): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}
