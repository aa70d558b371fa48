// Small DOM helpers, toasts, the confirmation dialog and the shared event stream.
import { MoEvent, loadMe, wsUrl } from "./api";

type Attrs = Record<string, string | boolean | number | ((e: Event) => void) | undefined>;

/** Create an element: h("button", {class: "x", onclick: f}, "text", child). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Array<Node | string | null | undefined | false>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v as EventListener);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

/** A short message in the corner; `alert` ones stay until dismissed. */
export function toast(text: string, kind: "info" | "error" | "critical" = "info", link?: string): void {
  const box = document.getElementById("toasts");
  if (!box) return;
  const close = h("button", { type: "button", class: "close", "aria-label": "Dismiss" }, "×");
  const body = link ? h("a", { href: link }, text) : h("span", {}, text);
  const t = h("div", { class: `toast ${kind}`, role: kind === "info" ? "status" : "alert" }, body, close);
  close.addEventListener("click", () => t.remove());
  box.append(t);
  if (kind === "info") setTimeout(() => t.remove(), 5000);
}

/** Ask before a destructive action; resolves true on confirm. Keyboard: Enter/Escape. */
export function confirmDialog(title: string, text: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = h("button", { type: "button", class: "danger", "data-confirm": "yes" }, confirmLabel);
    const cancel = h("button", { type: "button" }, "Cancel");
    const dlg = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "dlg-title" },
      h("h2", { id: "dlg-title" }, title),
      h("p", {}, text),
      h("div", { class: "row" }, cancel, ok),
    );
    let answered = false;
    const done = (v: boolean) => {
      if (answered) return;
      answered = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    ok.addEventListener("click", () => done(true));
    cancel.addEventListener("click", () => done(false));
    dlg.addEventListener("close", () => done(false));
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

export function fmtTime(t: string): string {
  const d = new Date(t);
  if (isNaN(d.getTime())) return t;
  return d.toISOString().replace("T", " ").replace("Z", "");
}

export const SEVERITIES = ["info", "notice", "warning", "error", "critical"];

// ---- the event stream: one WebSocket per page, shared by every view ----

type EventListenerFn = (e: MoEvent) => void;
const listeners = new Set<EventListenerFn>();
let stream: WebSocket | null = null;
let wanted = false;
let retry = 500;

export function onEvent(f: EventListenerFn): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function startEvents(): void {
  wanted = true;
  if (stream) return;
  const ws = new WebSocket(wsUrl("/api/v1/events/stream"));
  stream = ws;
  ws.onopen = () => {
    retry = 500;
    document.body.dataset.events = "open";
  };
  ws.onmessage = (m) => {
    if (typeof m.data !== "string") return;
    let e: MoEvent;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    if (!e || typeof e.id !== "number") return;
    for (const f of listeners) f(e);
    if (e.severity === "critical") toast(`CRITICAL ${e.device}: ${e.text}`, "critical", "#/events");
  };
  ws.onclose = () => {
    stream = null;
    document.body.dataset.events = "closed";
    if (wanted) {
      // Ended because the session did? Then the 401 sends the page to the login form.
      void loadMe().catch(() => {});
      setTimeout(() => wanted && startEvents(), retry);
      retry = Math.min(retry * 2, 15000);
    }
  };
}

export function stopEvents(): void {
  wanted = false;
  stream?.close();
  stream = null;
}
