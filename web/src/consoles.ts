// The console page: tabs of attached consoles, each with its toolbar (mode, who, break, power,
// notes, copy/paste) and banners for a link that is down or a log that cannot write.
import { ApiError, Device, enc, json, loadMe, may } from "./api";
import { ConsoleTerm, Viewer } from "./term";
import { clear, confirmDialog, h, toast } from "./ui";

interface Tab {
  name: string;
  panel: HTMLElement;
  button: HTMLButtonElement;
  term: ConsoleTerm;
}

const tabs = new Map<string, Tab>();
let active = "";
// The page's frame, kept across route changes so consoles stay attached while you look elsewhere.
const frame = h("section", { class: "consoles", "aria-label": "Consoles" });
const tabBar = h("div", { class: "tabs", role: "tablist", "aria-label": "Open consoles" });
const panels = h("div", { class: "panels" });
const empty = h("p", { class: "empty" }, "No console open. Pick one on the ", h("a", { href: "#/devices" }, "devices page"), ".");
frame.append(tabBar, panels, empty);

export function consoleNames(): string[] {
  return [...tabs.keys()];
}

export function showConsoles(main: HTMLElement, name?: string): void {
  main.append(frame);
  if (name) open(name);
  else if (active && tabs.has(active)) select(active);
  empty.hidden = tabs.size > 0;
  for (const t of tabs.values()) t.term.refit();
}

function select(name: string): void {
  active = name;
  for (const t of tabs.values()) {
    const on = t.name === name;
    t.panel.hidden = !on;
    t.button.setAttribute("aria-selected", String(on));
    t.button.tabIndex = on ? 0 : -1;
  }
  const t = tabs.get(name);
  if (t) {
    requestAnimationFrame(() => {
      t.term.refit();
      t.term.term.focus();
    });
  }
  if (location.hash !== `#/console/${enc(name)}`) history.replaceState(null, "", `#/console/${enc(name)}`);
}

export function closeTab(name: string): void {
  const t = tabs.get(name);
  if (!t) return;
  t.term.dispose();
  t.panel.remove();
  t.button.parentElement?.remove();
  tabs.delete(name);
  empty.hidden = tabs.size > 0;
  if (active === name) {
    const next = tabs.keys().next();
    if (!next.done) select(next.value);
    else {
      active = "";
      history.replaceState(null, "", "#/console");
    }
  }
}

export function closeAll(): void {
  for (const n of [...tabs.keys()]) closeTab(n);
}

function open(name: string): void {
  if (tabs.has(name)) {
    select(name);
    return;
  }
  const mode = may("attach", name) ? "attach" : "spy";
  const banner = h("div", { class: "banner", role: "status", hidden: true });
  const degraded = h("div", { class: "banner warn", role: "status", hidden: true });
  const notices = h("ol", { class: "notices", "aria-label": "Notices", "aria-live": "polite" });
  const whoList = h("ul", { class: "who", "aria-label": "Who is on this console" });
  const roleBadge = h("span", { class: "role", "data-role": "" }, "…");
  const missedBadge = h("span", { class: "missed", hidden: true });
  const termEl = h("div", { class: "term", "data-device": name });
  const notice = (text: string, kind: "notice" | "error") => {
    const li = h("li", { class: kind }, `${new Date().toLocaleTimeString()} ${text}`);
    notices.append(li);
    while (notices.children.length > 50) notices.firstElementChild?.remove();
    notices.scrollTop = notices.scrollHeight;
    if (kind === "error") toast(`${name}: ${text}`, "error");
    if (/log: degraded|cannot write/.test(text)) {
      degraded.hidden = false;
      degraded.textContent = `The record log of ${name} cannot write: ${text}`;
    }
    if (/log: recording again|record log writes again/.test(text)) degraded.hidden = true;
  };
  const term = new ConsoleTerm(termEl, {
    device: name,
    mode,
    onNotice: notice,
    onRole: (role) => {
      roleBadge.textContent = role;
      roleBadge.dataset.role = role;
      termEl.dataset.role = role;
    },
    onState: (state) => {
      termEl.dataset.state = state;
      banner.hidden = state === "up";
      banner.className = `banner ${state === "down" ? "error" : "warn"}`;
      banner.textContent =
        state === "down" ? `The link to ${name} is down; mo reconnects on its own.` : `The link to ${name} is ${state}.`;
    },
    onWho: (viewers: Viewer[]) => {
      clear(whoList);
      for (const v of viewers) whoList.append(h("li", { "data-user": v.user, "data-role": v.role }, `${v.user} (${v.role})`));
    },
    onClosed: (reason) => {
      // A session that ended (logout elsewhere, expiry) sends the page to the login form.
      void loadMe().catch(() => {});
      banner.hidden = false;
      banner.className = "banner error";
      clear(banner);
      banner.append(`Disconnected: ${reason} `, h("button", { type: "button", onclick: () => reconnect() }, "Reconnect"));
    },
    onMissed: (_bytes, total) => {
      missedBadge.hidden = false;
      missedBadge.textContent = `missed ${total} bytes`;
    },
  });
  const reconnect = () => {
    banner.hidden = true;
    term.connect(may("attach", name) ? "attach" : "spy");
  };

  const modes = h("div", { class: "group", role: "group", "aria-label": "Mode" });
  for (const m of ["attach", "spy", "force", "join"]) {
    if (!may(m, name)) continue;
    modes.append(h("button", { type: "button", "data-mode": m, onclick: () => term.setMode(m) }, m));
  }

  const tools = h("div", { class: "group", role: "group", "aria-label": "Tools" });
  if (may("break", name)) {
    const sel = h("select", { "aria-label": "Break sequence" });
    sel.append(h("option", { value: "0" }, "BREAK"));
    for (let i = 1; i <= 9; i++) sel.append(h("option", { value: String(i) }, `sequence ${i}`));
    tools.append(sel, h("button", { type: "button", onclick: () => term.control({ type: "break", number: Number(sel.value) }) }, "Send break"));
    // DTR/RTS (links with modem lines: serial, RFC 2217, agent ports): as the escapes ^EcD/^EcR;
    // the change comes back as a notice, a refusal (no modem lines, no write lock) as an error.
    const line = h("select", { "aria-label": "Modem line" });
    for (const l of ["dtr", "rts"]) line.append(h("option", { value: l }, l.toUpperCase()));
    const level = h("select", { "aria-label": "Line setting" });
    for (const v of ["toggle", "on", "off"]) level.append(h("option", { value: v }, v));
    tools.append(line, level, h("button", { type: "button", title: "Raise, drop or toggle DTR or RTS (dropping DTR resets some boards)", onclick: () => term.control({ type: "signal", [line.value]: level.value }) }, "Set line"));
  }
  tools.append(
    h("button", { type: "button", onclick: () => void term.copy(), title: "Copy the selection (Ctrl+Shift+C)" }, "Copy"),
    h("button", { type: "button", onclick: () => void term.paste().catch((e) => toast(`paste: ${e}`, "error")), title: "Paste (Ctrl+Shift+V)" }, "Paste"),
    h("a", { href: `#/log/${enc(name)}`, class: "button" }, "Log"),
  );

  let power: HTMLElement | null = null;
  if (may("power.status", name) || may("power.control", name)) {
    power = h("div", { class: "group power", role: "group", "aria-label": "Power" });
    const result = h("span", { class: "power-state", "aria-live": "polite" });
    const act = async (action: string) => {
      if (["off", "cycle", "reset", "soft-off"].includes(action)) {
        const ok = await confirmDialog(`Power ${action} ${name}?`, `This switches the power of ${name} (${action}). Everyone on the console sees it.`, `Power ${action}`);
        if (!ok) return;
      }
      result.textContent = `${action}…`;
      try {
        const r = await json<Record<string, unknown>>("POST", `/api/v1/devices/${enc(name)}/power`, { action });
        const st = r.state ?? (Array.isArray(r.results) ? (r.results as Array<Record<string, unknown>>).map((x) => x.state).join(",") : "");
        result.textContent = `${action}: ${String(st)}${r.message ? ` — ${String(r.message)}` : ""}`;
        result.dataset.state = String(st);
      } catch (e) {
        result.textContent = `${action} failed: ${(e as Error).message}`;
      }
    };
    if (may("power.status", name)) power.append(h("button", { type: "button", "data-power": "status", onclick: () => void act("status") }, "Power status"));
    if (may("power.control", name)) {
      for (const a of ["on", "off", "cycle", "reset"]) power.append(h("button", { type: "button", "data-power": a, class: a === "on" ? "" : "danger", onclick: () => void act(a) }, `Power ${a}`));
    }
    power.append(result);
  }

  let notes: HTMLElement | null = null;
  if (may("log.note", name)) {
    const input = h("input", { type: "text", placeholder: "Note for the log", "aria-label": "Note", maxlength: 65536 });
    notes = h(
      "form",
      {
        class: "group note",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const text = input.value.trim();
          if (!text) return;
          term.control({ type: "note", text });
          input.value = "";
          notice(`note written: ${text}`, "notice");
        },
      },
      input,
      h("button", { type: "submit" }, "Add note"),
    );
  }

  const toolbar = h("div", { class: "toolbar" }, h("span", { class: "label" }, "You are ", roleBadge), modes, tools, power, notes, missedBadge);
  const side = h("aside", { class: "side" }, h("h3", {}, "Who"), whoList, h("h3", {}, "Notices"), notices);
  const panel = h("div", { class: "panel", role: "tabpanel", id: `panel-${name}`, "aria-label": `Console ${name}` }, banner, degraded, toolbar, h("div", { class: "termwrap" }, termEl, side));
  const button = h("button", { type: "button", role: "tab", "aria-controls": `panel-${name}`, onclick: () => select(name) }, name);
  button.addEventListener("keydown", (e) => {
    const names = [...tabs.keys()];
    const i = names.indexOf(name);
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      const n = names[(i + (e.key === "ArrowRight" ? 1 : names.length - 1)) % names.length];
      select(n);
      tabs.get(n)?.button.focus();
      e.preventDefault();
    }
  });
  const closeBtn = h("button", { type: "button", class: "close", "aria-label": `Close ${name}`, onclick: () => closeTab(name) }, "×");
  tabBar.append(h("span", { class: "tab" }, button, closeBtn));
  panels.append(panel);
  tabs.set(name, { name, panel, button, term });
  empty.hidden = true;
  select(name);
  void json<{ degraded?: Array<{ device: string; error: string }> }>("GET", "/api/v1/health")
    .then((hl) => {
      const d = (hl.degraded ?? []).find((x) => x.device === name);
      if (d) {
        degraded.hidden = false;
        degraded.textContent = `The record log of ${name} cannot write: ${d.error}`;
      }
    })
    .catch(() => {});
  void json<Device>("GET", `/api/v1/devices/${enc(name)}`).catch((e) => {
    if (e instanceof ApiError && e.status === 404) notice(`no device ${name} (or you may not see it)`, "error");
  });
}
