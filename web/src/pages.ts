// The pages other than the console: login, devices, events, log, gang/listen.
import * as AsciinemaPlayer from "asciinema-player";
import { ApiError, Device, MoEvent, current, enc, json, login, may, text } from "./api";
import { ConsoleTerm } from "./term";
import { SEVERITIES, clear, fmtTime, h, onEvent, toast } from "./ui";

/** Undo hooks of the page on screen (event listeners, sockets), run when the route changes. */
export type Cleanup = () => void;

// ---------------------------------------------------------------- login

export function loginPage(main: HTMLElement, reason: string, after: () => void): Cleanup {
  const user = h("input", { id: "user", name: "user", autocomplete: "username", required: true, autofocus: true });
  const pw = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const msg = h("p", { class: "error", role: "alert", id: "login-error" }, reason);
  const btn = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "mo web console"),
    h("label", { for: "user" }, "User"),
    user,
    h("label", { for: "password" }, "Password"),
    pw,
    btn,
    msg,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    btn.disabled = true;
    msg.textContent = "";
    try {
      await login(user.value, pw.value);
      after();
    } catch (err) {
      const ae = err as ApiError;
      msg.textContent = ae.status === 401 ? "Wrong user or password." : ae.message;
      pw.select();
    } finally {
      btn.disabled = false;
    }
  });
  main.append(form);
  user.focus();
  return () => {};
}

// ---------------------------------------------------------------- devices

export function devicesPage(main: HTMLElement): Cleanup {
  const filter = h("input", { type: "search", placeholder: "Filter by name, group, description, state", "aria-label": "Filter devices", id: "filter" });
  const count = h("span", { class: "count", "aria-live": "polite" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "devices" },
    h("caption", {}, "Devices you may see"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Device"), h("th", { scope: "col" }, "Link"), h("th", { scope: "col" }, "Viewers"), h("th", { scope: "col" }, "Groups"), h("th", { scope: "col" }, "Description"), h("th", { scope: "col" }, "Open"))),
    tbody,
  );
  main.append(h("div", { class: "pagehead" }, h("h1", {}, "Devices"), filter, count), h("div", { class: "tablewrap" }, table));
  let devices: Device[] = [];
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    clear(tbody);
    let shown = 0;
    for (const d of devices) {
      const hay = `${d.name} ${d.state} ${(d.groups ?? []).join(" ")} ${d.description ?? ""}`.toLowerCase();
      if (q && !q.split(/\s+/).every((w) => hay.includes(w))) continue;
      shown++;
      const open = h("a", { href: `#/console/${enc(d.name)}`, class: "open", "aria-label": `Open the console of ${d.name}` }, "console");
      const log = may("log.read", d.name) ? h("a", { href: `#/log/${enc(d.name)}`, "aria-label": `Log of ${d.name}` }, "log") : null;
      const row = h(
        "tr",
        { "data-device": d.name, "data-state": d.state },
        h("th", { scope: "row" }, h("a", { href: `#/console/${enc(d.name)}`, class: "name" }, d.name)),
        h("td", {}, h("span", { class: `state ${d.state}` }, d.state), d.error ? h("span", { class: "err" }, ` ${d.error}`) : null),
        h("td", { class: "viewers" }, `${d.viewers ?? 0} viewer${d.viewers === 1 ? "" : "s"}`),
        h("td", {}, (d.groups ?? []).filter((g) => g !== "all").join(", ")),
        h("td", {}, d.description ?? ""),
        h("td", { class: "links" }, open, " ", log),
      );
      row.addEventListener("click", (e) => {
        if ((e.target as HTMLElement).closest("a")) return;
        location.hash = `#/console/${enc(d.name)}`;
      });
      tbody.append(row);
    }
    count.textContent = `${shown} of ${devices.length}`;
  };
  const load = async () => {
    try {
      devices = await json<Device[]>("GET", "/api/v1/devices");
      render();
    } catch (e) {
      toast(`devices: ${(e as Error).message}`, "error");
    }
  };
  filter.addEventListener("input", render);
  // Live state from the event stream: connection events change the row at once; any event of a
  // device refreshes its viewer count (one request per event burst, never a timer).
  let refresh = 0;
  const off = onEvent((e) => {
    const d = devices.find((x) => x.name === e.device);
    if (d && e.name === "connection") {
      d.state = e.text.startsWith("link up") ? "up" : e.text.startsWith("link down") ? "down" : d.state;
      render();
    }
    if (!refresh) refresh = window.setTimeout(() => {
      refresh = 0;
      void load();
    }, 300);
  });
  void load();
  filter.focus();
  return () => {
    off();
    clearTimeout(refresh);
  };
}

// ---------------------------------------------------------------- events

export function eventsPage(main: HTMLElement): Cleanup {
  const sev = h("select", { "aria-label": "Minimum severity", id: "sev" });
  for (const s of SEVERITIES) sev.append(h("option", { value: s }, `${s} and above`));
  const dev = h("input", { type: "search", placeholder: "Device", "aria-label": "Device filter", id: "evdev" });
  const unacked = h("input", { type: "checkbox", id: "unacked" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "events" },
    h("caption", {}, "Events (live)"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Device"), h("th", { scope: "col" }, "Severity"), h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, "Text"), h("th", { scope: "col" }, "Ack"))),
    tbody,
  );
  main.append(
    h("div", { class: "pagehead" }, h("h1", {}, "Events"), sev, dev, h("label", { for: "unacked" }, unacked, " unacknowledged only")),
    h("div", { class: "tablewrap" }, table),
  );
  const events = new Map<number, MoEvent>();
  const row = (e: MoEvent): HTMLElement => {
    const ack = e.acked_by
      ? h("span", { class: "acked" }, `by ${e.acked_by}`)
      : may("events.ack", e.device)
        ? h("button", { type: "button", "data-ack": String(e.id), onclick: () => void doAck(e) }, "Acknowledge")
        : h("span", {}, "—");
    return h(
      "tr",
      { "data-id": String(e.id), "data-severity": e.severity, class: `sev-${e.severity}${e.acked_by ? " acked" : ""}` },
      h("td", {}, fmtTime(e.time)),
      h("td", {}, h("a", { href: `#/console/${enc(e.device)}` }, e.device)),
      h("td", {}, h("span", { class: `sev ${e.severity}` }, e.severity)),
      h("td", {}, e.name),
      h("td", { class: "text" }, e.text + (e.count > 1 ? ` (×${e.count})` : "")),
      h("td", {}, ack),
    );
  };
  const visible = (e: MoEvent) =>
    SEVERITIES.indexOf(e.severity) >= SEVERITIES.indexOf(sev.value) &&
    (!dev.value || e.device.includes(dev.value.trim())) &&
    (!unacked.checked || !e.acked_by);
  const render = () => {
    clear(tbody);
    const list = [...events.values()].sort((a, b) => b.id - a.id);
    for (const e of list) if (visible(e)) tbody.append(row(e));
  };
  const doAck = async (e: MoEvent) => {
    try {
      const r = await json<MoEvent>("POST", `/api/v1/events/${e.id}/ack`);
      events.set(r.id, r);
      render();
      toast(`event #${r.id} acknowledged`);
    } catch (err) {
      toast(`acknowledge failed: ${(err as Error).message}`, "error");
    }
  };
  for (const x of [sev, dev, unacked]) x.addEventListener("input", render);
  const off = onEvent((e) => {
    events.set(e.id, e);
    render();
  });
  void json<MoEvent[]>("GET", "/api/v1/events?limit=500")
    .then((list) => {
      for (const e of list) if (!events.has(e.id)) events.set(e.id, e);
      render();
    })
    .catch((e) => toast(`events: ${(e as Error).message}`, "error"));
  return off;
}

// ---------------------------------------------------------------- log

interface Line {
  time: string;
  text: string;
  kind: "output" | "input" | "note" | "other";
  user?: string;
}

function parseLog(body: string): Line[] {
  const out: Line[] = [];
  for (const raw of body.split("\n")) {
    if (!raw) continue;
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) ?(.*)$/.exec(raw);
    const time = m ? m[1] : "";
    const rest = m ? m[2] : raw;
    let kind: Line["kind"] = "output";
    let user: string | undefined;
    let mm: RegExpExecArray | null;
    if ((mm = /^<([^>]+)> /.exec(rest))) {
      kind = "input";
      user = mm[1];
    } else if ((mm = /^\[note ([^\]]+)\]/.exec(rest))) {
      kind = "note";
      user = mm[1];
    } else if (/^\[(notice|event|power|mark|control|gap)\b/.test(rest)) kind = "other";
    out.push({ time, text: rest, kind, user });
  }
  return out;
}

export function logPage(main: HTMLElement, name: string): Cleanup {
  if (!may("log.read", name)) {
    main.append(h("h1", {}, `Log of ${name}`), h("p", { class: "error", role: "alert" }, `You may not read the log of ${name} (or there is no such device).`));
    return () => {};
  }
  const since = h("input", { type: "text", id: "since", value: "1d", "aria-label": "Since (RFC 3339 or 1h, 2d …)", size: 22 });
  const until = h("input", { type: "text", id: "until", value: "now", "aria-label": "Until", size: 22 });
  const load = h("button", { type: "button", id: "load" }, "Show");
  const q = h("input", { type: "search", id: "q", placeholder: "Search (regular expression)", "aria-label": "Search the log" });
  const ctx = h("input", { type: "number", id: "ctx", value: "2", min: "0", max: "20", "aria-label": "Context lines", size: 3 });
  const results = h("div", { class: "results", id: "results", "aria-live": "polite" });
  const jumpTime = h("input", { type: "text", id: "jump", placeholder: "Jump to time (2026-12-05T01:00)", "aria-label": "Jump to time" });
  const notesSel = h("select", { id: "notes", "aria-label": "Jump to a note" }, h("option", { value: "" }, "Jump to a note…"));
  const logEl = h("ol", { class: "log", id: "log", "aria-label": `Log of ${name}`, tabindex: "0" });
  const playEl = h("div", { class: "player", id: "player" });
  const dlText = h("a", { class: "button", download: `${name}.log` }, "Download text");
  const dlCast = h("a", { class: "button", download: `${name}.cast` }, "Download asciicast");
  const play = h("button", { type: "button", id: "play" }, "Play range");
  main.append(
    h("div", { class: "pagehead" }, h("h1", {}, `Log of ${name}`), h("a", { href: `#/console/${enc(name)}`, class: "button" }, "Console")),
    h("form", { class: "row", onsubmit: (e: Event) => { e.preventDefault(); void reload(); } }, h("label", { for: "since" }, "Since"), since, h("label", { for: "until" }, "Until"), until, load, play, dlText, dlCast),
    h("form", { class: "row", onsubmit: (e: Event) => { e.preventDefault(); search(); } }, q, h("label", { for: "ctx" }, "context"), ctx, h("button", { type: "submit" }, "Search"), jumpTime, h("button", { type: "button", onclick: () => jump() }, "Jump"), notesSel),
    results,
    playEl,
    logEl,
  );
  let lines: Line[] = [];
  let player: { dispose?: () => void } | null = null;
  const range = () => `since=${enc(since.value.trim() || "1d")}&until=${enc(until.value.trim() || "now")}`;
  const highlight = (i: number) => {
    const li = logEl.children[i] as HTMLElement | undefined;
    if (!li) return;
    for (const x of logEl.querySelectorAll(".hit")) x.classList.remove("hit");
    li.classList.add("hit");
    li.scrollIntoView({ block: "center" });
  };
  const render = () => {
    clear(logEl);
    clear(notesSel);
    notesSel.append(h("option", { value: "" }, "Jump to a note…"));
    lines.forEach((l, i) => {
      const li = h("li", { class: l.kind, "data-i": String(i) }, h("time", {}, l.time), " ", l.user && l.kind === "input" ? h("span", { class: "user" }, l.user) : null, l.kind === "input" ? l.text.replace(/^<[^>]+> /, "") : l.text);
      logEl.append(li);
      if (l.kind === "note") notesSel.append(h("option", { value: String(i) }, `${l.time} ${l.text}`));
    });
  };
  const reload = async () => {
    dlText.href = `/api/v1/devices/${enc(name)}/log?${range()}`;
    dlCast.href = `/api/v1/devices/${enc(name)}/log/asciicast?${range()}`;
    try {
      lines = parseLog(await text(`/api/v1/devices/${enc(name)}/log?${range()}`));
      render();
      logEl.dataset.loaded = String(lines.length);
      if (lines.length) highlight(lines.length - 1);
    } catch (e) {
      clear(logEl);
      logEl.append(h("li", { class: "error" }, (e as Error).message));
    }
  };
  const search = () => {
    clear(results);
    let re: RegExp;
    try {
      re = new RegExp(q.value, "i");
    } catch (e) {
      results.append(h("p", { class: "error" }, `bad pattern: ${(e as Error).message}`));
      return;
    }
    const c = Math.max(0, Math.min(20, Number(ctx.value) || 0));
    const hits = lines.map((l, i) => (re.test(l.text) ? i : -1)).filter((i) => i >= 0);
    results.append(h("p", {}, `${hits.length} match${hits.length === 1 ? "" : "es"} for /${q.value}/`));
    let lastEnd = -1;
    let group: HTMLElement | null = null;
    for (const i of hits.slice(0, 200)) {
      const from = Math.max(0, i - c);
      const to = Math.min(lines.length - 1, i + c);
      if (!group || from > lastEnd + 1) {
        group = h("ol", { class: "ctx" });
        results.append(group);
      }
      for (let j = Math.max(from, lastEnd + 1); j <= to; j++) {
        const l = lines[j];
        group.append(h("li", { class: `${l.kind}${j === i || re.test(l.text) ? " match" : ""}` }, h("button", { type: "button", class: "link", onclick: () => highlight(j) }, l.time), " ", l.text));
      }
      lastEnd = to;
    }
  };
  const jump = () => {
    const t = jumpTime.value.trim();
    if (!t) return;
    const want = new Date(/Z|[+-]\d\d:?\d\d$/.test(t) ? t : `${t}Z`).getTime();
    const i = lines.findIndex((l) => new Date(l.time).getTime() >= want);
    highlight(i >= 0 ? i : lines.length - 1);
  };
  notesSel.addEventListener("change", () => {
    if (notesSel.value) highlight(Number(notesSel.value));
  });
  play.addEventListener("click", () => {
    player?.dispose?.();
    clear(playEl);
    const url = `/api/v1/devices/${enc(name)}/log/asciicast?${range()}`;
    const p = AsciinemaPlayer.create(url, playEl, { autoPlay: true, fit: "width", idleTimeLimit: 1, speed: 4, controls: true, terminalFontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace" });
    player = p;
    (window as unknown as { __mo: Record<string, unknown> }).__mo.player = p;
  });
  void reload();
  return () => player?.dispose?.();
}

// ---------------------------------------------------------------- gang / listen

export function gangPage(main: HTMLElement, initial: string[]): Cleanup {
  const targets = h("input", { type: "text", id: "targets", value: initial.join(" "), placeholder: "sim-01 sim-02 @group 'web*'", "aria-label": "Devices (names, globs, @group)" });
  const listen = h("button", { type: "button", id: "listen" }, "Listen");
  const cmd = h("input", { type: "text", id: "gangcmd", placeholder: "Command for every device", "aria-label": "Command to broadcast" });
  const send = h("button", { type: "submit", id: "gangsend" }, "Send to all");
  const summary = h("div", { class: "summary", id: "gangsummary", "aria-live": "polite" });
  const grid = h("div", { class: "grid", id: "grid" });
  const gangForm = h("form", { class: "row" }, cmd, send);
  if (!may("gang") && !Object.values(current()?.devices ?? {}).some((a) => a.includes("gang") || a.includes("admin"))) gangForm.hidden = true;
  main.append(
    h("div", { class: "pagehead" }, h("h1", {}, "Gang / listen")),
    h("form", { class: "row", onsubmit: (e: Event) => { e.preventDefault(); void start(); } }, h("label", { for: "targets" }, "Devices"), targets, listen),
    gangForm,
    summary,
    grid,
  );
  let terms: ConsoleTerm[] = [];
  const tiles = new Map<string, HTMLElement>();
  const stop = () => {
    for (const t of terms) t.dispose();
    terms = [];
    tiles.clear();
    clear(grid);
  };
  const start = async () => {
    stop();
    let devices: Device[] = [];
    try {
      devices = await json<Device[]>("GET", "/api/v1/devices");
    } catch (e) {
      toast((e as Error).message, "error");
      return;
    }
    const words = targets.value.split(/[\s,]+/).filter(Boolean);
    const match = (d: Device) =>
      words.length === 0 ||
      words.some((w) => (w.startsWith("@") ? d.groups?.includes(w.slice(1)) : new RegExp(`^${w.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`).test(d.name)));
    const chosen = devices.filter(match).slice(0, 16);
    for (const d of chosen) {
      const el = h("div", { class: "gterm", "data-device": d.name });
      const tile = h("figure", { class: "tile", "data-device": d.name }, h("figcaption", {}, h("a", { href: `#/console/${enc(d.name)}` }, d.name), h("span", { class: "badge" })), el);
      grid.append(tile);
      tiles.set(d.name, tile);
      terms.push(new ConsoleTerm(el, { device: d.name, mode: "spy", readOnly: true, fontSize: 11, replay: 30 }));
    }
    summary.textContent = `listening to ${chosen.length} console${chosen.length === 1 ? "" : "s"} (read-only)`;
  };
  gangForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const command = cmd.value;
    if (!command || tiles.size === 0) return;
    send.disabled = true;
    try {
      const r = await json<{ divergent?: string[]; majority?: string[]; refused?: Array<{ device: string; reason: string }>; failed?: Array<{ device: string; reason: string }> }>("POST", "/api/v1/gang", { targets: [...tiles.keys()], command });
      for (const [n, tile] of tiles) {
        tile.classList.remove("divergent", "refused", "failed", "agree");
        const badge = tile.querySelector(".badge") as HTMLElement;
        badge.textContent = "";
        if (r.divergent?.includes(n)) {
          tile.classList.add("divergent");
          badge.textContent = "divergent";
        } else if (r.majority?.includes(n)) tile.classList.add("agree");
      }
      for (const x of [...(r.refused ?? []), ...(r.failed ?? [])]) {
        const tile = tiles.get(x.device);
        tile?.classList.add("refused");
        const badge = tile?.querySelector(".badge") as HTMLElement | null;
        if (badge) badge.textContent = x.reason;
      }
      summary.textContent = `sent to ${tiles.size}: ${r.majority?.length ?? 0} agree, ${r.divergent?.length ?? 0} divergent, ${(r.refused?.length ?? 0) + (r.failed?.length ?? 0)} refused or failed`;
      cmd.value = "";
    } catch (err) {
      toast(`gang: ${(err as Error).message}`, "error");
    } finally {
      send.disabled = false;
    }
  });
  if (initial.length) void start();
  return stop;
}

export function notFound(main: HTMLElement, what: string): Cleanup {
  main.append(h("h1", {}, "Not found"), h("p", {}, what), h("a", { href: "#/devices" }, "Devices"));
  return () => {};
}

export { ApiError };
